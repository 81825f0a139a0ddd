// libFuzzer harness: parameter files (read_tensor_record,
// bind_combined_params, plan_param_arena + bind_separate_param,
// write_combined_params).
//
// Input layout: byte 0 selects one of the built-in legacy programs
// (fuzz_util.h builtin_programs(), parsed once at start-up by the real
// ProgramDesc reader) and, for the separate-file path, which parameter; the
// remaining bytes are the params file. For every input:
// 1. read_tensor_record is called in a loop over the params bytes; every
//    record it returns must lie inside the buffer and be self-consistent;
// 2. the bytes are bound as a combined file to the selected program; on
//    success every tensor view must lie in its storage, and write -> bind ->
//    write must reproduce the same bytes and the same dump_program;
// 3. the bytes are bound as the selected parameter's separate file.
// Only pif::ModelError (known code, naming the file) may escape the readers.
//
// Seed mode: PIF_FUZZ_SEEDS_OUT=<dir> [PIF_FUZZ_FIXTURES=<root>]
// [PIF_FUZZ_MAX_LEN=<n>] writes seeds and exits.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "format/params.h"
#include "format/program_desc.h"
#include "fuzz/fuzz_util.h"
#include "graph/ir.h"

namespace {

const char* kFile = "fuzz.pdiparams";

struct Prog {
  std::string label;
  std::vector<pif_fuzz::ParamSpec> sorted;  // spec params in file order
  pif::Program program;
  // The separate-file arena, planned once: the program is fixed, so planning
  // it per input would only repeat the same allocation (for "mnist", 360 KB
  // zeroed per input, most of the harness's time).
  std::vector<uint64_t> offsets;
  std::shared_ptr<std::vector<uint8_t>> arena;
};

std::vector<Prog>& programs() {
  static std::vector<Prog> progs;
  return progs;
}

void init_programs() {
  for (const auto& spec : pif_fuzz::builtin_programs()) {
    std::string bytes = pif_fuzz::encode_program(spec);
    try {
      Prog p;
      p.label = spec.label;
      p.sorted = pif_fuzz::sorted_params(spec);
      p.program =
          pif::parse_program_desc(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                  "builtin.pdmodel", pif_fuzz::small_limits());
      try {
        p.arena =
            pif::plan_param_arena(&p.program, "fuzzdir", pif_fuzz::small_limits(), &p.offsets);
      } catch (const pif::ModelError& e) {
        pif_fuzz::die("plan_param_arena refused built-in program '%s': %s", spec.label, e.what());
      }
      if (p.offsets.size() != p.program.params.size())
        pif_fuzz::die("plan_param_arena: offsets size mismatch for '%s'", spec.label);
      if (p.program.params.size() != spec.params.size()) {
        std::fprintf(stderr,
                     "fuzz_pdiparams: built-in program '%s' declares %zu params, reader found "
                     "%zu\n",
                     spec.label, spec.params.size(), p.program.params.size());
      }
      programs().push_back(std::move(p));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz_pdiparams: built-in program '%s' skipped: %s\n", spec.label,
                   e.what());
    }
  }
  if (programs().empty()) std::fprintf(stderr, "fuzz_pdiparams: no built-in program parsed\n");
}

bool mul_ok(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

void check_record(const pif::TensorRecord& r, size_t before, size_t pos, size_t size,
                  const pif::LoadLimits& limits, const uint8_t* buf) {
  if (pos <= before) pif_fuzz::die("read_tensor_record did not advance (pos %zu)", pos);
  if (pos > size) pif_fuzz::die("read_tensor_record advanced past the end: %zu > %zu", pos, size);
  if (r.data_offset < before || r.data_offset > pos || r.nbytes != pos - r.data_offset)
    pif_fuzz::die("record data [%llu, +%llu) inconsistent with record span [%zu, %zu)",
                  static_cast<unsigned long long>(r.data_offset),
                  static_cast<unsigned long long>(r.nbytes), before, pos);
  if (r.dims.size() > limits.max_rank) pif_fuzz::die("record rank %zu over limit", r.dims.size());
  if (r.nbytes > limits.max_tensor_bytes) pif_fuzz::die("record bytes over max_tensor_bytes");
  uint64_t numel = 1;
  bool known = true;
  for (int64_t d : r.dims) {
    if (d < 0) {
      known = false;
      break;
    }
    if (!mul_ok(numel, static_cast<uint64_t>(d), &numel)) pif_fuzz::die("record numel overflows");
  }
  uint64_t want = 0;
  if (known && pif::dtype_size(r.dtype) != 0 &&
      (!mul_ok(numel, pif::dtype_size(r.dtype), &want) || want != r.nbytes))
    pif_fuzz::die("record nbytes %llu != numel %llu * elem %zu",
                  static_cast<unsigned long long>(r.nbytes), static_cast<unsigned long long>(numel),
                  pif::dtype_size(r.dtype));
  volatile uint8_t sink = 0;
  for (uint64_t k = 0; k < r.nbytes; ++k)
    sink = static_cast<uint8_t>(sink ^ buf[r.data_offset + k]);
  (void)sink;
}

void fuzz_records(const uint8_t* buf, size_t n, const pif::LoadLimits& limits) {
  size_t pos = 0;
  for (int i = 0; pos < n && i < 100000; ++i) {
    size_t before = pos;
    pif::TensorRecord r;
    try {
      r = pif::read_tensor_record(buf, n, &pos, kFile, "record " + std::to_string(i), limits);
    } catch (const pif::ModelError& e) {
      pif_fuzz::check_model_error(e, kFile);
      return;
    }
    check_record(r, before, pos, n, limits, buf);
  }
}

void fuzz_combined(const Prog& base, const uint8_t* buf, size_t n, const pif::LoadLimits& limits) {
  pif::Program p = base.program;
  try {
    pif::bind_combined_params(&p, buf, n, kFile, limits);
  } catch (const pif::ModelError& e) {
    pif_fuzz::check_model_error(e, kFile);
    return;
  }
  pif_fuzz::check_params(p);
  // What we write must bind again to the same IR and re-write byte-identically.
  std::string w = pif::write_combined_params(p);
  pif::Program p2 = base.program;
  try {
    pif::bind_combined_params(&p2, reinterpret_cast<const uint8_t*>(w.data()), w.size(),
                              "fuzz.rewritten.pdiparams", limits);
  } catch (const pif::ModelError& e) {
    pif_fuzz::die("round trip: written params do not bind again: %s", e.what());
  }
  pif_fuzz::check_params(p2);
  std::string d1 = pif::dump_program(p), d2 = pif::dump_program(p2);
  if (d1 != d2)
    pif_fuzz::die("round trip: dump_program differs after write+bind, %s",
                  pif_fuzz::first_diff(d1, d2).c_str());
  if (pif::write_combined_params(p2) != w) pif_fuzz::die("round trip: re-written params differ");
}

void fuzz_separate(const Prog& base, size_t idx, const uint8_t* buf, size_t n,
                   const pif::LoadLimits& limits) {
  pif::Program p = base.program;
  try {
    pif::bind_separate_param(&p, idx, buf, n, kFile, limits, base.arena, base.offsets[idx]);
  } catch (const pif::ModelError& e) {
    pif_fuzz::check_model_error(e, kFile);
    return;
  }
  const pif::Parameter& prm = p.params[idx];
  if (!prm.loaded) pif_fuzz::die("separate param %zu not loaded after success", idx);
  const pif::Tensor& t = prm.tensor;
  if (t.nbytes > 0) {
    if (!t.storage || t.offset > t.storage->size() || t.nbytes > t.storage->size() - t.offset)
      pif_fuzz::die("separate param %zu: view outside storage", idx);
    volatile uint8_t sink = 0;
    for (uint64_t k = 0; k < t.nbytes; ++k) sink = static_cast<uint8_t>(sink ^ t.data()[k]);
    (void)sink;
  }
}

// ---------------------------------------------------------------------------
// Seeds.

// A seed: the selector byte, then the params bytes.
void write_seed(const std::string& dir, const std::string& name, uint8_t sel,
                const std::string& body, size_t max_len, int* count) {
  pif_fuzz::write_seed(dir, name, std::string(1, static_cast<char>(sel)) + body, max_len, count);
}

void make_seeds(const std::string& out) {
  const size_t max_len = pif_fuzz::seed_max_len(400000);
  int count = 0;
  const size_t np = programs().size();
  for (size_t pi = 0; pi < np; ++pi) {
    const Prog& pr = programs()[pi];
    std::string combined;
    for (size_t i = 0; i < pr.sorted.size(); ++i) {
      const auto& s = pr.sorted[i];
      std::string rec = pif_fuzz::encode_record(s.dtype, s.dims, static_cast<uint8_t>(i * 31));
      combined += rec;
      size_t sel = pi + np * i;
      if (sel < 256)
        write_seed(out, "builtin_" + pr.label + "_sep_" + s.name, static_cast<uint8_t>(sel), rec,
                   max_len, &count);
    }
    write_seed(out, "builtin_" + pr.label + "_combined", static_cast<uint8_t>(pi), combined,
               max_len, &count);
    pif::Program p = pr.program;
    try {
      pif::bind_combined_params(&p, reinterpret_cast<const uint8_t*>(combined.data()),
                                combined.size(), "seed", pif_fuzz::small_limits());
    } catch (const pif::ModelError& e) {
      std::fprintf(stderr, "seed warning: built-in combined params for '%s' do not bind: %s\n",
                   pr.label.c_str(), e.what());
    }
  }
  // Records with LoD levels and mixed dtypes, for the record loop.
  std::string lod = pif_fuzz::encode_record(pif_fuzz::kF32, {3, 2}, 1, {{0, 1, 3}}) +
                    pif_fuzz::encode_record(pif_fuzz::kI64, {2}, 2, {{0, 2}, {0, 1, 2}}) +
                    pif_fuzz::encode_record(pif_fuzz::kF16, {1, 2}, 3);
  write_seed(out, "records_lod", 0, lod, max_len, &count);

  const char* root = std::getenv("PIF_FUZZ_FIXTURES");
  if (root != nullptr && *root != '\0') {
    size_t mnist = np;
    for (size_t pi = 0; pi < np; ++pi)
      if (programs()[pi].label == "mnist") mnist = pi;
    for (const auto& df : pif_fuzz::find_program_files(root)) {
      const std::string& dir = df.first;
      std::string tag = pif_fuzz::sanitize_name(dir.substr(std::string(root).size()));
      // Separate layout: each file is one record; match it to the built-in
      // mnist program when the names agree.
      if (mnist < np) {
        const Prog& pr = programs()[mnist];
        std::string combined;
        bool all = true;
        for (size_t i = 0; i < pr.sorted.size(); ++i) {
          std::string rec;
          if (!pif_fuzz::read_file(dir + "/" + pr.sorted[i].name, &rec)) {
            all = false;
            continue;
          }
          combined += rec;
          write_seed(out, "fixture" + tag + "_" + pr.sorted[i].name,
                     static_cast<uint8_t>(mnist + np * i), rec, max_len, &count);
        }
        if (all)
          write_seed(out, "fixture" + tag + "_combined", static_cast<uint8_t>(mnist), combined,
                     max_len, &count);
      }
      // Combined files: prefixes feed the record loop.
      for (const auto& name : pif_fuzz::list_dir(dir)) {
        if (name.size() < 10 || name.compare(name.size() - 10, 10, ".pdiparams") != 0) continue;
        std::string bytes;
        if (!pif_fuzz::read_file(dir + "/" + name, &bytes)) continue;
        for (size_t n : {512, 4096, 65536})
          if (bytes.size() > n)
            write_seed(out, "prefix" + std::to_string(n) + tag, 0, bytes.substr(0, n), max_len,
                       &count);
      }
    }
  }
  std::printf("fuzz_pdiparams: wrote %d seeds to %s\n", count, out.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  init_programs();
  pif_fuzz::run_seed_mode(make_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const pif::LoadLimits limits = pif_fuzz::small_limits();
  if (size == 0) return 0;
  const uint8_t sel = data[0];
  // An exact-size copy so ASan guards both ends of the params buffer.
  std::vector<uint8_t> buf(data + 1, data + size);
  const uint8_t* b = buf.empty() ? nullptr : buf.data();
  const size_t n = buf.size();

  fuzz_records(b, n, limits);
  const auto& progs = programs();
  if (progs.empty()) return 0;
  const Prog& base = progs[sel % progs.size()];
  fuzz_combined(base, b, n, limits);
  if (!base.program.params.empty())
    fuzz_separate(base, (sel / progs.size()) % base.program.params.size(), b, n, limits);
  return 0;
}
