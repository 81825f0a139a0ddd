// run_model: runs a model on a seeded random input with our Executor and
// writes input and outputs as raw little-endian files, for cross-checking
// against other runtimes (e.g. an ONNX export run by onnxruntime).
//
//   run_model MODEL_DIR --input-shape 1,3,224,224 --out PREFIX
//             [--seed N] [--random-weights SEED] [--threads N] [--input-range LO,HI]
//             [--input-file RAW_F32]
//
// Writes PREFIX.input.bin (float32, uniform in [LO, HI), default [-1, 1)), PREFIX.out<k>.bin
// (output k's raw bytes) and PREFIX.json (names, dtypes, dims).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "builder/random_weights.h"
#include "export/onnx.h"
#include "format/model_dir.h"
#include "passes/constant_fold.h"
#include "runtime/executor.h"
#include "tools/tool_main.h"

using namespace pif;

namespace {
std::vector<int64_t> parse_dims(const std::string& s) {
  std::vector<int64_t> d;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) d.push_back(std::strtoll(item.c_str(), nullptr, 10));
  return d;
}
void write_bin(const std::string& path, const void* data, size_t n) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!f) throw std::runtime_error("cannot write " + path);
}
std::string dims_json(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}
}  // namespace

int main(int argc, char** argv) {
  std::string dir, prefix;
  std::vector<int64_t> shape;
  uint64_t seed = 1, wseed = 0;
  bool random = false;
  int threads = 0;
  double in_lo = -1.0, in_hi = 1.0;
  std::string in_file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--input-shape")
      shape = parse_dims(next());
    else if (a == "--seed")
      seed = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--out")
      prefix = next();
    else if (a == "--random-weights") {
      random = true;
      wseed = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--threads")
      threads = std::atoi(next().c_str());
    else if (a == "--input-file")
      in_file = next();
    else if (a == "--input-range") {
      std::string r = next();
      size_t c = r.find(',');
      in_lo = std::strtod(r.substr(0, c).c_str(), nullptr);
      in_hi = c == std::string::npos ? in_lo : std::strtod(r.substr(c + 1).c_str(), nullptr);
    } else
      dir = a;
  }
  if (dir.empty() || prefix.empty() || shape.empty()) {
    std::cerr
        << "usage: run_model MODEL_DIR --input-shape 1,3,224,224 --out PREFIX [--seed N] "
           "[--random-weights SEED] [--threads N] [--input-range LO,HI] [--input-file RAW_F32]\n";
    return 2;
  }
  return run_tool([&] {
    LoadOptions lo;
    lo.require_params = !random;
    auto m = std::make_shared<LoadedModel>(load_model(dir, lo));
    if (random) bind_random_params(&m->program, wseed);
    fold_constants(&m->program);
    Executor ex(m);
    const Program& p = ex.program();
    if (p.inputs.size() != 1) throw std::runtime_error("run_model supports one-input models");
    NamedTensor in;
    in.name = p.inputs[0].name;
    in.dtype = DType::Float32;
    in.dims = shape;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::mt19937_64 rng(seed);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x)
      v = static_cast<float>(in_lo + (in_hi - in_lo) *
                                         (static_cast<double>(rng() >> 11) / 9007199254740992.0));
    in.data.resize(x.size() * 4);
    std::memcpy(in.data.data(), x.data(), in.data.size());
    if (!in_file.empty()) {
      std::ifstream f(in_file, std::ios::binary);
      f.read(reinterpret_cast<char*>(x.data()), static_cast<std::streamsize>(x.size() * 4));
      if (!f)
        throw std::runtime_error("cannot read " + std::to_string(x.size() * 4) + " bytes from " +
                                 in_file);
    }
    std::memcpy(in.data.data(), x.data(), in.data.size());
    write_bin(prefix + ".input.bin", x.data(), in.data.size());
    if (threads <= 0) threads = 1;
    auto outs = ex.run({in}, threads);
    std::string js =
        "{\"input\":{\"name\":\"" + in.name + "\",\"dims\":" + dims_json(shape) + "},\"outputs\":[";
    for (size_t k = 0; k < outs.size(); ++k) {
      write_bin(prefix + ".out" + std::to_string(k) + ".bin", outs[k].data.data(),
                outs[k].data.size());
      js += std::string(k ? "," : "") + "{\"name\":\"" + outs[k].name + "\",\"dtype\":\"" +
            dtype_name(outs[k].dtype) + "\",\"dims\":" + dims_json(outs[k].dims) + "}";
    }
    js += "]}\n";
    std::ofstream(prefix + ".json") << js;
    std::cout << js;
    return 0;
  });
}
