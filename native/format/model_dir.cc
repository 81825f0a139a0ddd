#include "format/model_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <atomic>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "format/params.h"
#include "format/pir_json.h"
#include "format/program_desc.h"

namespace pif {

namespace {

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string dirname_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string basename_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A parameter name used as a file name must stay inside the model directory.
bool safe_param_file_name(const std::string& name) {
  if (name.empty() || name[0] == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return name.find('\0') == std::string::npos;
}

[[noreturn]] void io_fail(const std::string& path, const std::string& what) {
  int e = errno;
  throw ModelError(e == ENOENT ? code::kNotFound : code::kIo, path, -1, "",
                   what + ": " + std::strerror(e));
}

// A failure to write is an I/O error whatever errno says: ENOENT there means a missing
// output directory, not a missing model.
[[noreturn]] void write_fail(const std::string& path, const std::string& what) {
  int e = errno;
  throw ModelError(code::kIo, path, -1, "", what + ": " + std::strerror(e));
}

bool looks_like_json(const std::string& bytes) {
  for (char c : bytes) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    return c == '{';
  }
  return false;
}

}  // namespace

namespace {

// Streams a combined params file into the program's arena (pread, no copy of
// the whole file in memory).
void bind_params_file(Program* p, const std::string& path, const LoadLimits& limits) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_fail(path, "cannot open");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) io_fail(path, "cannot stat");
  if (!S_ISREG(st.st_mode)) throw ModelError(code::kIo, path, -1, "", "not a regular file");
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > limits.max_file_bytes) {
    throw ModelError(code::kLimit, path, -1, "",
                     "file is " + std::to_string(size) + " bytes, over the limit of " +
                         std::to_string(limits.max_file_bytes));
  }
  auto read_at = [&](uint64_t offset, uint8_t* dst, uint64_t n) {
    uint64_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd, dst + got, static_cast<size_t>(std::min<uint64_t>(n - got, 1 << 30)),
                          static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) io_fail(path, "read failed");
      if (r == 0) {
        throw ModelError(code::kIo, path, static_cast<int64_t>(offset + got), "",
                         "file ended early (changed while loading?)");
      }
      got += static_cast<uint64_t>(r);
    }
  };
  bind_combined_params_stream(p, size, read_at, path, limits);
}

}  // namespace

std::string read_file_limited(const std::string& path, uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_fail(path, "cannot open");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    io_fail(path, "cannot stat");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ModelError(code::kIo, path, -1, "", "not a regular file");
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    ::close(fd);
    throw ModelError(code::kLimit, path, -1, "",
                     "file is " + std::to_string(size) + " bytes, over the limit of " +
                         std::to_string(max_bytes));
  }
  std::string data(static_cast<size_t>(size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::read(fd, &data[got], data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      io_fail(path, "read failed");
    }
    if (n == 0) break;  // file shrank while reading
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  return data;
}

LoadedModel load_model(const std::string& path, const LoadOptions& opts) {
  LoadedModel m;
  if (path.empty()) throw ModelError(code::kNotFound, path, -1, "", "empty model path");
  if (is_dir(path)) {
    m.dir = path;
    // PaddleX prefers the PIR program when both exist.
    for (const char* name :
         {"inference.json", "inference.pdmodel", "model.json", "model.pdmodel", "__model__"}) {
      if (is_file(join(path, name))) {
        m.program_file = join(path, name);
        break;
      }
    }
    if (m.program_file.empty()) {
      throw ModelError(code::kNotFound, path, -1, "",
                       "no model program found (looked for inference.json, inference.pdmodel, "
                       "model.json, model.pdmodel, __model__)");
    }
  } else if (is_file(path)) {
    m.program_file = path;
    m.dir = dirname_of(path);
  } else {
    throw ModelError(code::kNotFound, path, -1, "", "model directory does not exist");
  }

  std::string bytes = read_file_limited(m.program_file, opts.limits.max_file_bytes);
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  if (looks_like_json(bytes)) {
    m.program = parse_pir_json(data, bytes.size(), m.program_file, opts.limits);
  } else {
    m.program = parse_program_desc(data, bytes.size(), m.program_file, opts.limits);
  }
  bytes.clear();
  bytes.shrink_to_fit();

  // Parameters: <stem>.pdiparams next to the program, the old combined names,
  // else (legacy only) one file per variable.
  std::string base = basename_of(m.program_file);
  size_t dot = base.find_last_of('.');
  std::string stem = dot == std::string::npos ? base : base.substr(0, dot);
  std::vector<std::string> candidates = {join(m.dir, stem + ".pdiparams")};
  if (base == "__model__") {
    candidates.push_back(join(m.dir, "__params__"));
    candidates.push_back(join(m.dir, "params"));
  }
  for (const std::string& c : candidates) {
    if (is_file(c)) {
      m.params_file = c;
      m.params_layout = ParamsLayout::Combined;
      break;
    }
  }
  Program& p = m.program;
  if (m.params_layout == ParamsLayout::None && !p.params.empty() &&
      p.format == ProgramFormat::Legacy) {
    bool all = true;
    for (const Parameter& prm : p.params) {
      if (!safe_param_file_name(prm.name) || !is_file(join(m.dir, prm.name))) {
        all = false;
        break;
      }
    }
    if (all) {
      m.params_layout = ParamsLayout::Separate;
      m.params_file = m.dir;
    }
  }

  if (m.params_layout == ParamsLayout::Combined) {
    bind_params_file(&p, m.params_file, opts.limits);
  } else if (m.params_layout == ParamsLayout::Separate) {
    std::vector<uint64_t> offsets;
    auto arena = plan_param_arena(&p, m.dir, opts.limits, &offsets);
    for (size_t k = 0; k < p.params.size(); ++k) {
      std::string file = join(m.dir, p.params[k].name);
      std::string pb = read_file_limited(file, opts.limits.max_file_bytes);
      bind_separate_param(&p, k, reinterpret_cast<const uint8_t*>(pb.data()), pb.size(), file,
                          opts.limits, arena, offsets[k]);
    }
  } else if (!p.params.empty() && opts.require_params) {
    std::string looked;
    for (const std::string& c : candidates) looked += (looked.empty() ? "" : ", ") + basename_of(c);
    throw ModelError(code::kNotFound, m.dir, -1, "",
                     "parameters not found: looked for " + looked +
                         (p.format == ProgramFormat::Legacy ? " and one file per parameter" : "") +
                         " (" + std::to_string(p.params.size()) + " parameters, first '" +
                         p.params[0].name + "')");
  }
  return m;
}

void write_file_atomic(const std::string& path, const std::string& data) {
  // pid and a process-wide sequence number: two writes of one path at once (worker threads,
  // concurrent exports) each get their own temporary file.
  static std::atomic<uint64_t> seq{0};
  std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(seq++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) write_fail(tmp, "cannot create");
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = e;
      write_fail(tmp, "write failed");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    write_fail(tmp, "fsync/close failed");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    write_fail(path, "rename failed");
  }
}

namespace {

void make_dirs(const std::string& dir) {
  if (dir.empty() || is_dir(dir)) return;
  make_dirs(dirname_of(dir));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    write_fail(dir, "cannot create directory");
}

}  // namespace

SavedFiles save_model(const LoadedModel& m, const std::string& dir, ParamsLayout layout) {
  const Program& p = m.program;
  // A graph-only model (loaded without its parameters) saves as its program
  // alone; a partly loaded one is an error rather than a silent hole.
  size_t loaded = 0;
  for (const Parameter& prm : p.params) loaded += prm.loaded ? 1 : 0;
  if (loaded != 0 && loaded != p.params.size()) {
    throw ModelError(code::kParams, m.dir, -1, "",
                     "cannot save a model whose parameters were only partly loaded");
  }
  const bool with_params = loaded != 0;
  if (layout == ParamsLayout::None) layout = ParamsLayout::Combined;
  if (layout == ParamsLayout::Separate && p.format != ProgramFormat::Legacy) {
    throw ModelError(code::kUnsupported, dir, -1, "",
                     "the one-file-per-parameter layout exists only for legacy programs");
  }
  make_dirs(dir);
  SavedFiles out;
  if (p.format == ProgramFormat::Pir) {
    out.program_file = join(dir, "inference.json");
    write_file_atomic(out.program_file, write_pir_json(p));
  } else {
    out.program_file =
        join(dir, layout == ParamsLayout::Separate ? "__model__" : "inference.pdmodel");
    write_file_atomic(out.program_file, write_program_desc(p));
  }
  if (!with_params) return out;
  if (layout == ParamsLayout::Combined) {
    out.params_file = join(dir, "inference.pdiparams");
    write_file_atomic(out.params_file, write_combined_params(p));
  } else {
    for (const Parameter& prm : p.params) {
      if (!safe_param_file_name(prm.name)) {
        throw ModelError(code::kUnsupported, dir, -1, "parameter '" + prm.name + "'",
                         "name cannot be used as a file name");
      }
      std::string file = join(dir, prm.name);
      make_dirs(dirname_of(file));
      std::string rec;
      append_tensor_record(prm.tensor, &rec);
      write_file_atomic(file, rec);
    }
    out.params_file = dir;
  }
  return out;
}

}  // namespace pif
