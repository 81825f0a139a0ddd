#include "graph/attr_num.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "graph/op_def.h"

namespace pif {

Num num_from_double(double d) {
  Num n;
  n.d = d;
  if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.2e18) {
    n.is_int = true;
    n.i = static_cast<int64_t>(d);
  }
  return n;
}

Num attr_num(const Op& op, const std::string& name, double def) {
  const Attr* a = op.attr(name);
  if (!a) return num_from_double(def);
  if (a->kind == Attr::Kind::Scalar && !a->scalars.empty()) {
    const ScalarAttr& s = a->scalars[0];
    if (s.type == 1) return num_from_double(s.b ? 1 : 0);
    if (s.type == 2) {
      Num n;
      n.is_int = true;
      n.i = s.i;
      n.d = static_cast<double>(s.i);
      return n;
    }
    return num_from_double(s.type == 4 ? s.c_real : s.r);
  }
  if (a->is_int() || a->kind == Attr::Kind::Bool) {
    Num n;
    a->as_int(&n.i);
    n.is_int = true;
    n.d = static_cast<double>(n.i);
    return n;
  }
  double d;
  if (a->as_double(&d)) return num_from_double(d);
  op_fail("attribute '" + name + "' is not a number");
}

bool parse_str_num(const std::string& s, Num* out) {
  if (s.empty()) return false;
  const char* b = s.c_str();
  char* e = nullptr;
  errno = 0;
  long long i = std::strtoll(b, &e, 10);
  if (e && *e == 0 && errno == 0) {
    out->is_int = true;
    out->i = i;
    out->d = static_cast<double>(i);
    return true;
  }
  double d = std::strtod(b, &e);
  if (!e || *e != 0) return false;
  *out = num_from_double(d);
  return true;
}

}  // namespace pif
