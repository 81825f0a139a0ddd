// The debug tools' one error report: runs the tool's body and turns a pif::ModelError (its code)
// or another exception into a message on stderr and exit status 1.
#pragma once

#include <exception>
#include <functional>
#include <iostream>

#include "common/error.h"

namespace pif {

inline int run_tool(const std::function<int()>& body) {
  try {
    return body();
  } catch (const ModelError& e) {
    std::cerr << "error " << e.code() << ": " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}

}  // namespace pif
