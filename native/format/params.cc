#include "format/params.h"

#include <cstring>

#include "format/wire.h"

namespace pif {

namespace {

// Arena offsets are aligned so kernels may use aligned vector loads.
constexpr uint64_t kAlign = 64;
// A TensorDesc is a dtype and a handful of dims; anything larger is damage.
constexpr int64_t kMaxDescBytes = 1 << 16;
// LoD offsets are never present in weights; cap what a record may declare.
constexpr uint64_t kMaxLodLevels = 16;

uint64_t align_up(uint64_t v) { return (v + kAlign - 1) & ~(kAlign - 1); }

class ByteCursor {
 public:
  // `base`: file offset of data[0] (error offsets are file offsets).
  ByteCursor(const uint8_t* data, size_t size, size_t pos, const std::string& file,
             const std::string& where, uint64_t base = 0)
      : data_(data), size_(size), pos_(pos), file_(file), where_(where), base_(base) {}

  template <typename T>
  T get(const char* what) {
    if (size_ - pos_ < sizeof(T)) fail(std::string("truncated ") + what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  void need(uint64_t n, const char* what) {
    if (n > size_ - pos_) {
      fail(std::string(what) + " needs " + std::to_string(n) + " bytes but only " +
           std::to_string(size_ - pos_) + " remain");
    }
  }
  [[noreturn]] void fail(const std::string& detail) const {
    throw ModelError(code::kParams, file_, static_cast<int64_t>(base_ + pos_), where_, detail);
  }
  size_t pos() const { return pos_; }
  void advance(uint64_t n) { pos_ += static_cast<size_t>(n); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_;
  const std::string& file_;
  const std::string& where_;
  uint64_t base_;
};

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

// Bytes of a tensor with static dims, or fails when dims are negative or the
// size exceeds `limit`.
bool tensor_bytes(DType t, const std::vector<int64_t>& dims, uint64_t limit, uint64_t* out) {
  uint64_t n = dtype_size(t);
  if (n == 0) return false;
  for (int64_t d : dims) {
    if (d < 0) return false;
    if (d != 0 && n > limit / static_cast<uint64_t>(d)) return false;
    n *= static_cast<uint64_t>(d);
  }
  if (n > limit) return false;
  *out = n;
  return true;
}

}  // namespace

TensorRecord read_tensor_record(const uint8_t* data, size_t size, size_t* pos,
                                const std::string& file, const std::string& where,
                                const LoadLimits& limits) {
  return read_tensor_header(data, size, 0, size, pos, file, where, limits);
}

TensorRecord read_tensor_header(const uint8_t* data, size_t size, uint64_t base,
                                uint64_t total_size, size_t* pos, const std::string& file,
                                const std::string& where, const LoadLimits& limits) {
  TensorRecord rec;
  ByteCursor c(data, size, *pos, file, where, base);
  uint32_t version = c.get<uint32_t>("record version");
  if (version != 0) c.fail("unsupported tensor record version " + std::to_string(version));
  uint64_t lod_levels = c.get<uint64_t>("LoD level count");
  if (lod_levels > kMaxLodLevels) c.fail("absurd LoD level count " + std::to_string(lod_levels));
  for (uint64_t l = 0; l < lod_levels; ++l) {
    uint64_t n = c.get<uint64_t>("LoD level size");
    if (n % 8 != 0) c.fail("LoD level size " + std::to_string(n) + " is not a multiple of 8");
    c.need(n, "LoD level");
    if (n > limits.max_tensor_bytes) c.fail("LoD level too large");
    std::vector<uint64_t> level(n / 8);
    if (n) std::memcpy(level.data(), data + c.pos(), n);
    c.advance(n);
    rec.lod.push_back(std::move(level));
  }
  uint32_t tversion = c.get<uint32_t>("tensor version");
  if (tversion != 0) c.fail("unsupported tensor version " + std::to_string(tversion));
  int32_t desc_size = c.get<int32_t>("tensor desc size");
  if (desc_size < 0 || desc_size > kMaxDescBytes) {
    c.fail("invalid tensor desc size " + std::to_string(desc_size));
  }
  c.need(static_cast<uint64_t>(desc_size), "tensor desc");
  {
    wire::Reader r(data + c.pos(), static_cast<size_t>(desc_size), &file, base + c.pos());
    int64_t data_type = -1;
    uint32_t f, wt;
    try {
      while (r.next(&f, &wt)) {
        if (f == 1) {
          data_type = r.int32_field(wt);
        } else if (f == 2) {
          r.repeated(wt, wire::kVarint, &rec.dims,
                     [](wire::Reader& rr, uint32_t w) { return rr.int64_field(w); });
          if (rec.dims.size() > limits.max_rank) r.fail("tensor rank exceeds the limit");
        } else {
          r.skip(wt);
        }
      }
    } catch (const ModelError& e) {
      throw ModelError(code::kParams, file, e.offset(), where, "tensor desc: " + e.detail());
    }
    if (!dtype_from_legacy(data_type, &rec.dtype)) {
      c.fail("unknown tensor data type " + std::to_string(data_type));
    }
  }
  c.advance(static_cast<uint64_t>(desc_size));
  uint64_t nbytes = 0;
  if (!tensor_bytes(rec.dtype, rec.dims, limits.max_tensor_bytes, &nbytes)) {
    c.fail("tensor dims " + dims_str(rec.dims) + " are negative or exceed the tensor size limit");
  }
  // The data may lie beyond the window: check it against the whole file.
  uint64_t remain = total_size - std::min<uint64_t>(total_size, base + c.pos());
  if (nbytes > remain) {
    c.fail("tensor data needs " + std::to_string(nbytes) + " bytes but only " +
           std::to_string(remain) + " remain");
  }
  rec.data_offset = c.pos();
  rec.nbytes = nbytes;
  c.advance(nbytes);
  *pos = c.pos();
  return rec;
}

void append_tensor_record(const Tensor& t, std::string* out) {
  auto put = [&](const void* p, size_t n) { out->append(static_cast<const char*>(p), n); };
  uint32_t zero32 = 0;
  uint64_t levels = t.lod.size();
  put(&zero32, 4);
  put(&levels, 8);
  for (const auto& level : t.lod) {
    uint64_t n = level.size() * 8;
    put(&n, 8);
    if (n) put(level.data(), n);
  }
  put(&zero32, 4);
  std::string desc;
  wire::Writer w(&desc);
  w.int_field(1, dtype_to_legacy(t.dtype));
  for (int64_t d : t.dims) w.int_field(2, d);
  int32_t desc_size = static_cast<int32_t>(desc.size());
  put(&desc_size, 4);
  out->append(desc);
  if (t.nbytes) put(t.data(), t.nbytes);
}

namespace {

std::string record_where(const Program& p, size_t k) {
  return "record " + std::to_string(k) + " of " + std::to_string(p.params.size()) + " (" +
         p.params[k].name + ")";
}

// Checks a record against the program's parameter and binds it to the arena
// slot; `copy` fills the slot with the record's data.
template <typename Copy>
void check_and_bind(Parameter& prm, const TensorRecord& rec, const std::string& file,
                    const std::string& where, uint64_t record_pos,
                    const std::shared_ptr<std::vector<uint8_t>>& arena, uint64_t arena_offset,
                    Copy copy) {
  if (rec.dtype != prm.tensor.dtype) {
    throw ModelError(code::kParams, file, static_cast<int64_t>(record_pos), where,
                     std::string("dtype ") + dtype_name(rec.dtype) +
                         " does not match the program's " + dtype_name(prm.tensor.dtype));
  }
  if (rec.dims != prm.tensor.dims) {
    throw ModelError(
        code::kParams, file, static_cast<int64_t>(record_pos), where,
        "dims " + dims_str(rec.dims) + " do not match the program's " + dims_str(prm.tensor.dims));
  }
  if (rec.nbytes) copy(arena->data() + arena_offset);
  prm.tensor.lod = rec.lod;
  prm.tensor.storage = arena;
  prm.tensor.offset = arena_offset;
  prm.tensor.nbytes = rec.nbytes;
  prm.loaded = true;
}

}  // namespace

// Plans the shared arena from the program's declared shapes, refusing sizes
// over the limits before allocating anything.
std::shared_ptr<std::vector<uint8_t>> plan_param_arena(Program* p, const std::string& file,
                                                       const LoadLimits& limits,
                                                       std::vector<uint64_t>* offsets) {
  uint64_t total = 0;
  offsets->clear();
  for (size_t k = 0; k < p->params.size(); ++k) {
    const Tensor& t = p->params[k].tensor;
    uint64_t n = 0;
    if (dtype_size(t.dtype) == 0) {
      throw ModelError(code::kFormat, file, -1, record_where(*p, k),
                       "parameter has no element type (dtype undefined)");
    }
    if (!tensor_bytes(t.dtype, t.dims, limits.max_tensor_bytes, &n)) {
      throw ModelError(code::kLimit, file, -1, record_where(*p, k),
                       "declared dims " + dims_str(t.dims) +
                           " are negative or exceed the tensor size limit (" +
                           std::to_string(limits.max_tensor_bytes) + " bytes)");
    }
    offsets->push_back(total);
    total = align_up(total + n);
    if (total > limits.max_total_param_bytes) {
      throw ModelError(code::kLimit, file, -1, record_where(*p, k),
                       "parameters exceed the total size limit (" +
                           std::to_string(limits.max_total_param_bytes) + " bytes)");
    }
  }
  return std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(total));
}

namespace {

// A combined params file that ends before record k of n, or goes on after the last one.
[[noreturn]] void fail_file_ends(const std::string& file, uint64_t pos, const std::string& where,
                                 size_t k, size_t n) {
  throw ModelError(
      code::kParams, file, static_cast<int64_t>(pos), where,
      "file ends after " + std::to_string(k) + " of " + std::to_string(n) + " records");
}
[[noreturn]] void fail_left_over(const std::string& file, uint64_t pos, uint64_t size, size_t n) {
  throw ModelError(code::kParams, file, static_cast<int64_t>(pos), "",
                   std::to_string(size - pos) + " bytes left over after the last of " +
                       std::to_string(n) +
                       " records (params file does not belong to this program?)");
}

}  // namespace

void bind_combined_params(Program* p, const uint8_t* data, size_t size, const std::string& file,
                          const LoadLimits& limits) {
  std::vector<uint64_t> offsets;
  auto arena = plan_param_arena(p, file, limits, &offsets);
  size_t pos = 0;
  for (size_t k = 0; k < p->params.size(); ++k) {
    std::string where = record_where(*p, k);
    if (pos >= size) fail_file_ends(file, pos, where, k, p->params.size());
    size_t start = pos;
    TensorRecord rec = read_tensor_record(data, size, &pos, file, where, limits);
    check_and_bind(p->params[k], rec, file, where, start, arena, offsets[k],
                   [&](uint8_t* dst) { std::memcpy(dst, data + rec.data_offset, rec.nbytes); });
  }
  if (pos != size) fail_left_over(file, pos, size, p->params.size());
}

void bind_separate_param(Program* p, size_t index, const uint8_t* data, size_t size,
                         const std::string& file, const LoadLimits& limits,
                         std::shared_ptr<std::vector<uint8_t>> arena, uint64_t arena_offset) {
  if (index >= p->params.size() || !arena) {
    throw ModelError(code::kParams, file, -1, "", "parameter index out of range");
  }
  std::string where = record_where(*p, index);
  size_t pos = 0;
  TensorRecord rec = read_tensor_record(data, size, &pos, file, where, limits);
  if (pos != size) {
    throw ModelError(code::kParams, file, static_cast<int64_t>(pos), where,
                     std::to_string(size - pos) + " bytes left over after the record");
  }
  if (arena_offset > arena->size() || rec.nbytes > arena->size() - arena_offset) {
    throw ModelError(code::kParams, file, -1, where, "record does not fit its arena slot");
  }
  check_and_bind(p->params[index], rec, file, where, 0, arena, arena_offset,
                 [&](uint8_t* dst) { std::memcpy(dst, data + rec.data_offset, rec.nbytes); });
}

std::string write_combined_params(const Program& p) {
  std::string out;
  for (const Parameter& prm : p.params) {
    if (!prm.loaded) {
      throw ModelError(code::kParams, "", -1, "parameter '" + prm.name + "'",
                       "cannot write parameters that were not loaded");
    }
    append_tensor_record(prm.tensor, &out);
  }
  return out;
}

void bind_combined_params_stream(Program* p, uint64_t size, const ReadAt& read_at,
                                 const std::string& file, const LoadLimits& limits) {
  std::vector<uint64_t> offsets;
  auto arena = plan_param_arena(p, file, limits, &offsets);
  constexpr uint64_t kWindow = uint64_t(1) << 16;  // record headers are ~100 bytes
  std::vector<uint8_t> window;
  uint64_t pos = 0;
  for (size_t k = 0; k < p->params.size(); ++k) {
    std::string where = record_where(*p, k);
    if (pos >= size) fail_file_ends(file, pos, where, k, p->params.size());
    // Parse the header from a window at pos; grow the window when a header
    // (e.g. one with LoD levels) does not fit and the file has more bytes.
    uint64_t want = kWindow;
    TensorRecord rec;
    size_t rel = 0;
    for (;;) {
      uint64_t n = std::min<uint64_t>(want, size - pos);
      window.resize(static_cast<size_t>(n));
      read_at(pos, window.data(), window.size());
      rel = 0;
      try {
        rec =
            read_tensor_header(window.data(), window.size(), pos, size, &rel, file, where, limits);
        break;
      } catch (const ModelError& e) {
        bool short_window = e.detail().find("truncated") != std::string::npos ||
                            e.detail().find("bytes but only") != std::string::npos;
        if (!short_window || n == size - pos || want >= limits.max_tensor_bytes) throw;
        want *= 8;
      }
    }
    uint64_t data_pos = pos + rec.data_offset;
    check_and_bind(p->params[k], rec, file, where, pos, arena, offsets[k],
                   [&](uint8_t* dst) { read_at(data_pos, dst, rec.nbytes); });
    pos += rel;
  }
  if (pos != size) fail_left_over(file, pos, size, p->params.size());
}

}  // namespace pif
