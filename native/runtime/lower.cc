#include "runtime/lower.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "kernels/registry.h"

namespace pif {

namespace {

// Ops that do not compute at run time: graph I/O markers, parameters, and
// tuple plumbing resolved during lowering.
const std::unordered_set<std::string>& passive_ops() {
  static const std::unordered_set<std::string> s = {"feed",
                                                    "fetch",
                                                    "pd_op.data",
                                                    "pd_op.fetch",
                                                    "builtin.parameter",
                                                    "builtin.combine",
                                                    "builtin.split",
                                                    "builtin.slice"};
  return s;
}

// Unsupported op type -> (ops, blocks holding them).
using Unsupported = std::map<std::string, std::pair<size_t, std::set<int32_t>>>;

// PIR tuple plumbing: builtin.split unpacks a vector value into results.
using Unpacked = std::unordered_map<ValueId, std::vector<ValueId>>;

Unpacked unpacked_tuples(const Block& b0) {
  Unpacked unpacked;
  for (const Op& op : b0.ops) {
    if (op.type != "builtin.split" || op.inputs.empty() || op.inputs[0].args.empty()) continue;
    std::vector<ValueId> results;
    for (const OpSlot& s : op.outputs)
      for (ValueId v : s.args) results.push_back(v);
    unpacked[op.inputs[0].args[0]] = results;
  }
  return unpacked;
}

// Whether the op computes nothing at run time (passive, or every output folded).
bool needs_no_node(const Program& p, const Op& op) {
  if (passive_ops().count(op.type)) return true;
  bool all_const = true, any_output = false;
  for (const OpSlot& s : op.outputs) {
    for (ValueId v : s.args) {
      any_output = true;
      if (v == kNoValue || !p.values[v].constant) all_const = false;
    }
  }
  return any_output && all_const;
}

// Maps an op's slots to the OpDef's canonical slots: by legacy slot name, or
// by PIR operand position (combine results expand to their elements, split
// tuples to their results).
class SlotMapper {
 public:
  SlotMapper(const Program& p, const Unpacked& unpacked) : p_(p), unpacked_(unpacked) {}

  std::vector<std::vector<ValueId>> map(const std::vector<std::string>& names,
                                        const std::vector<OpSlot>& slots,
                                        const std::vector<int>& pir_map, bool is_output) const {
    std::vector<std::vector<ValueId>> groups(names.size());
    for (size_t c = 0; c < names.size(); ++c) {
      if (p_.format == ProgramFormat::Pir) {
        int idx = pir_map.empty() ? static_cast<int>(c) : pir_map[c];
        if (idx < 0 || static_cast<size_t>(idx) >= slots.size()) continue;
        for (ValueId v : slots[idx].args) expand(v, &groups[c], is_output);
        continue;
      }
      std::string name = names[c];
      if (name.empty()) continue;
      bool variadic = name.back() == '*';
      if (variadic) name.pop_back();
      for (const OpSlot& s : slots) {
        if (s.name != name) continue;
        if (variadic) {
          groups[c] = s.args;
        } else if (!s.args.empty()) {
          groups[c].push_back(s.args[0]);
        }
      }
    }
    return groups;
  }

 private:
  void expand(ValueId v, std::vector<ValueId>* out, bool is_output) const {
    if (v == kNoValue) return;
    const Value& val = p_.values[v];
    if (!is_output && !val.elements.empty()) {
      out->insert(out->end(), val.elements.begin(), val.elements.end());
      return;
    }
    auto it = is_output ? unpacked_.find(v) : unpacked_.end();
    if (it != unpacked_.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
    out->push_back(v);
  }

  const Program& p_;
  const Unpacked& unpacked_;
};

Node lower_op(const LoadedModel& m, const SlotMapper& slots, const OpDef* def, const Op& op,
              size_t index) {
  const Program& p = m.program;
  Node n;
  n.def = def;
  n.source = &op;
  n.source_index = index;
  n.inputs = slots.map(def->legacy_inputs, op.inputs, def->pir_inputs, false);
  n.outputs = slots.map(def->legacy_outputs, op.outputs, {}, true);
  // Legacy training-style ops write running statistics back into their
  // persistable inputs (batch_norm's MeanOut/VarianceOut are the Mean/
  // Variance variables). At inference those writes must not clobber the
  // parameters, so such outputs are dropped.
  for (auto& g : n.outputs) {
    g.erase(std::remove_if(g.begin(), g.end(),
                           [&](ValueId v) {
                             const Value& val = p.values[v];
                             return val.param_index >= 0 || val.constant != nullptr;
                           }),
            g.end());
  }
  if (def->prepare) {
    try {
      n.state = def->prepare(PrepareCtx{p, n, AttrReader(op)});
    } catch (const OpError& e) {
      throw model_error(m, e.code, n.where(), e.what());
    }
  }
  return n;
}

// Sub-blocks (bodies of while / conditional_block and the like) only run
// through a control-flow op of block 0, which is then unsupported too; so
// they matter only when the model fails anyway, and the one error lists
// every unsupported op type of every block.
[[noreturn]] void throw_unsupported(const LoadedModel& m, Unsupported unsupported) {
  const Program& p = m.program;
  for (size_t bi = 1; bi < p.blocks.size(); ++bi) {
    for (const Op& op : p.blocks[bi].ops) {
      if (passive_ops().count(op.type) || find_op_for_type(op.type)) continue;
      auto& u = unsupported[op.type];
      ++u.first;
      u.second.insert(p.blocks[bi].idx);
    }
  }
  std::string list;
  size_t total = 0;
  for (const auto& kv : unsupported) {
    std::string blocks;
    for (int32_t b : kv.second.second) blocks += (blocks.empty() ? "" : ", ") + std::to_string(b);
    list += (list.empty() ? "" : ", ") + kv.first + " x" + std::to_string(kv.second.first) +
            (kv.second.second.size() == 1 ? " (block " : " (blocks ") + blocks + ")";
    total += kv.second.first;
  }
  throw model_error(m, code::kUnsupported, "",
                    std::to_string(unsupported.size()) + " unsupported op type(s) (" +
                        std::to_string(total) + " ops): " + list);
}

}  // namespace

ModelError model_error(const LoadedModel& m, const std::string& code, const std::string& where,
                       const std::string& msg) {
  return ModelError(code, m.program_file, -1, where, msg);
}

std::vector<Node> lower_program(const LoadedModel& model) {
  const Program& p = model.program;
  const Block& b0 = p.blocks[0];
  Unpacked unpacked = unpacked_tuples(b0);
  SlotMapper slots(p, unpacked);
  Unsupported unsupported;
  std::vector<Node> nodes;
  for (size_t i = 0; i < b0.ops.size(); ++i) {
    const Op& op = b0.ops[i];
    if (needs_no_node(p, op)) continue;
    const OpDef* def = find_op_for_type(op.type);
    if (!def) {
      auto& u = unsupported[op.type];
      ++u.first;
      u.second.insert(b0.idx);
      continue;
    }
    nodes.push_back(lower_op(model, slots, def, op, i));
  }
  if (!unsupported.empty()) throw_unsupported(model, std::move(unsupported));
  return nodes;
}

}  // namespace pif
