#include "train/shitu_tail.h"

#include <map>
#include <vector>

#include "common/error.h"
#include "graph/op_states.h"

namespace pif {
namespace train {
namespace {

class TailFinder {
 public:
  TailFinder(const Executor& ex, const std::string& dir) : ex_(ex), p_(ex.program()), dir_(dir) {
    const std::vector<Node>& nodes = ex.nodes();
    for (size_t i = 0; i < nodes.size(); ++i) {
      for (const auto& slot : nodes[i].outputs)
        for (ValueId v : slot) producer_[v] = i;
      for (const auto& slot : nodes[i].inputs)
        for (ValueId v : slot) ++consumers_[v];
    }
  }

  ShituTail find() {
    if (p_.outputs.empty()) fail("the program has no output");
    ShituTail t;
    ValueId v = p_.outputs[0].value;
    // Identity-like ops before the fetch (the legacy export's scale 1.0, assign).
    for (const Node* n = node_of(v); n != nullptr && is_identity(*n); n = node_of(v))
      v = n->inputs[0][0];
    if (const Node* n = node_of(v); n != nullptr && n->def->name == "add") return clip_neck(v);
    const Node* bn = expect(v, "batch_norm", "the output's batch_norm (BNNeck)");
    t.bn_epsilon = bn->attrs<BnState>().epsilon;
    t.bn_scale = param_of(*bn, 1, "Scale");
    t.bn_bias = param_of(*bn, 2, "Bias");
    t.bn_mean = param_of(*bn, 3, "Mean");
    t.bn_var = param_of(*bn, 4, "Variance");
    v = single_use(bn->inputs[0][0], *bn);
    // flatten(s) and one dropout (or scale without shift), in any order.
    bool scaled = false;
    for (const Node* n = node_of(v); n != nullptr; n = node_of(v)) {
      const std::string& op = n->def->name;
      if (op == "flatten" || op == "flatten2" || op == "reshape" || op == "squeeze") {
      } else if ((op == "dropout" || op == "scale") && !scaled) {
        const UnState& s = n->attrs<UnState>();
        if (s.kind == UnKind::Scale && s.b == 0)
          t.dropout_scale = s.a;
        else if (s.kind != UnKind::Identity)
          fail(n->where() + ": a " + op + " with a shift");
        scaled = true;
      } else {
        break;
      }
      v = single_use(n->inputs[0][0], *n);
    }
    const Node* add = expect(v, "add", "last_conv's bias add");
    const int32_t bias1 = param_behind(add->inputs[1][0]);
    const int side = bias1 >= 0 ? 1 : param_behind(add->inputs[0][0]) >= 0 ? 0 : -1;
    if (side < 0) fail(add->where() + ": the bias add has no parameter operand");
    t.conv_bias = param_behind(add->inputs[side][0]);
    v = single_use(add->inputs[1 - side][0], *add);
    const Node* conv = expect(v, "conv2d", "last_conv (a 1x1 convolution)");
    const ConvState& cs = conv->attrs<ConvState>();
    if (cs.transpose || cs.groups != 1 || cs.sh != 1 || cs.sw != 1 || cs.nhwc ||
        cs.pads[0] + cs.pads[1] + cs.pads[2] + cs.pads[3] != 0 || cs.algo == PadAlgo::Same)
      fail(conv->where() + ": last_conv is not a plain 1x1 convolution");
    t.conv_weight = param_of(*conv, 1, "Filter");
    const std::vector<int64_t>& wd = p_.params[t.conv_weight].tensor.dims;
    if (wd.size() != 4 || wd[2] != 1 || wd[3] != 1)
      fail(conv->where() + ": last_conv's filter is not [out, in, 1, 1]");
    t.dim = wd[0];
    t.in = wd[1];
    if (conv->inputs.size() > 2 && !conv->inputs[2].empty())
      fail(conv->where() + ": last_conv has a bias operand of its own");
    for (int32_t k : {t.conv_bias, t.bn_scale, t.bn_bias, t.bn_mean, t.bn_var})
      if (p_.params[k].tensor.numel() != t.dim)
        fail("parameter " + p_.params[k].name + " has " +
             std::to_string(p_.params[k].tensor.numel()) + " values, not " + std::to_string(t.dim));
    t.pooled = single_use(conv->inputs[0][0], *conv);
    const Node* pool = expect(t.pooled, "pool2d", "the global average pool");
    const PoolState& ps = pool->attrs<PoolState>();
    const bool one_by_one = ps.global || (ps.adaptive && adaptive_to_1x1(*pool, ps));
    if (ps.is_max || ps.nhwc || !one_by_one)
      fail(pool->where() + ": not a global average pool to 1x1");
    return t;
  }

  std::vector<RepBlock> blocks(const ShituTail& t, int count) const {
    const Node* pool = expect(t.pooled, "pool2d", "the global average pool");
    ValueId v = single_use(pool->inputs[0][0], *pool);
    std::vector<RepBlock> out(static_cast<size_t>(count));
    for (int b = count - 1; b >= 0; --b) {
      out[b] = block(v);
      v = out[b].input;
    }
    return out;
  }

 private:
  // The block whose output is `v` (see RepBlock).
  RepBlock block(ValueId v) const {
    RepBlock r;
    r.output = v;
    const Node* n = node_of(v);
    if (n == nullptr) stage_fail("no block output (the value comes from no op)");
    ValueId relu_out = v, shortcut = kNoValue;
    if (n->def->name == "add") {
      if (param_behind(n->inputs[0][0]) >= 0 || param_behind(n->inputs[1][0]) >= 0)
        stage_fail(n->where() + ": a bias add where the block's shortcut add should be");
      const Node* a = node_of(n->inputs[0][0]);
      const int main = a != nullptr && a->def->name == "relu" ? 0 : 1;
      relu_out = single_use(n->inputs[main][0], *n);
      shortcut = n->inputs[1 - main][0];
      r.residual = true;
    }
    const Node* relu2 = expect_block(relu_out, "relu", "the pointwise conv's ReLU");
    const Node* bn = expect_block(single_use(relu2->inputs[0][0], *relu2), "batch_norm",
                                  "the pointwise conv's batch_norm");
    if (bn->attrs<BnState>().channel_last) stage_fail(bn->where() + ": a channel-last batch_norm");
    r.bn_epsilon = bn->attrs<BnState>().epsilon;
    r.bn_scale = param_of(*bn, 1, "Scale");
    r.bn_bias = param_of(*bn, 2, "Bias");
    r.bn_mean = param_of(*bn, 3, "Mean");
    r.bn_var = param_of(*bn, 4, "Variance");
    const Node* pw = expect_block(single_use(bn->inputs[0][0], *bn), "conv2d", "the 1x1 conv");
    const ConvState& pc = pw->attrs<ConvState>();
    if (pc.transpose || pc.groups != 1 || pc.sh != 1 || pc.sw != 1 || pc.nhwc ||
        pc.pads[0] + pc.pads[1] + pc.pads[2] + pc.pads[3] != 0 || pc.algo == PadAlgo::Same)
      stage_fail(pw->where() + ": not a plain 1x1 convolution");
    r.pw_weight = param_of(*pw, 1, "Filter");
    const std::vector<int64_t>& pd = p_.params[r.pw_weight].tensor.dims;
    if (pd.size() != 4 || pd[2] != 1 || pd[3] != 1 ||
        (pw->inputs.size() > 2 && !pw->inputs[2].empty()))
      stage_fail(pw->where() + ": not a 1x1 convolution without bias");
    r.cout = pd[0];
    r.cin = pd[1];
    const Node* relu1 = expect_block(single_use(pw->inputs[0][0], *pw), "relu",
                                     "the depthwise conv's ReLU (an SE block is not trained)");
    const Node* add = expect_block(single_use(relu1->inputs[0][0], *relu1), "add",
                                   "the depthwise conv's bias add");
    const int side = param_behind(add->inputs[1][0]) >= 0 ? 1 : 0;
    r.dw_bias = param_behind(add->inputs[side][0]);
    if (r.dw_bias < 0) stage_fail(add->where() + ": the bias add has no parameter operand");
    const Node* dw =
        expect_block(single_use(add->inputs[1 - side][0], *add), "conv2d", "the depthwise conv");
    const ConvState& dc = dw->attrs<ConvState>();
    r.dw_weight = param_of(*dw, 1, "Filter");
    const std::vector<int64_t>& wd = p_.params[r.dw_weight].tensor.dims;
    if (dc.transpose || dc.nhwc || dc.groups != r.cin || dc.sh != dc.sw || dc.dh != 1 ||
        dc.dw != 1 || dc.algo == PadAlgo::Same || wd.size() != 4 || wd[0] != r.cin || wd[1] != 1 ||
        wd[2] != wd[3] || wd[2] % 2 == 0 || dc.pads[0] != (wd[2] - 1) / 2 ||
        dc.pads[1] != dc.pads[0] || dc.pads[2] != dc.pads[0] || dc.pads[3] != dc.pads[0] ||
        (dw->inputs.size() > 2 && !dw->inputs[2].empty()))
      stage_fail(dw->where() + ": not a k x k depthwise convolution over " + std::to_string(r.cin) +
                 " channels with (k - 1) / 2 padding");
    r.k = wd[2];
    r.pad = dc.pads[0];
    r.stride = dc.sh;
    r.input = dw->inputs[0][0];
    for (int32_t q : {r.dw_bias})
      if (p_.params[q].tensor.numel() != r.cin) stage_fail(p_.params[q].name + " is not [cin]");
    for (int32_t q : {r.bn_scale, r.bn_bias, r.bn_mean, r.bn_var})
      if (p_.params[q].tensor.numel() != r.cout)
        stage_fail(p_.params[q].name + " is not [" + std::to_string(r.cout) + "]");
    if (r.residual && (shortcut != r.input || r.cin != r.cout || r.stride != 1))
      stage_fail(n->where() + ": the shortcut does not add the block's input");
    return r;
  }
  const Node* expect_block(ValueId v, const char* op, const char* what) const {
    const Node* n = node_of(v);
    if (n == nullptr) stage_fail(std::string("no ") + what + " (the value comes from no op)");
    if (n->def->name != op)
      stage_fail(n->where() + " stands where " + what + " should (" + op + ")");
    return n;
  }
  [[noreturn]] void stage_fail(const std::string& why) const {
    throw ModelError(code::kUnsupported, dir_, -1, "",
                     "not PP-ShiTuV2_rec's last stage (depthwise conv + bias -> ReLU -> 1x1 conv "
                     "-> batch_norm -> ReLU [+ shortcut], before the global pool): " +
                         why);
  }
  // The CLIP tail from the bias add `v` back: matmul(pooled, W [in, dim]) + b [dim].
  ShituTail clip_neck(ValueId v) const {
    ShituTail t;
    t.clip = true;
    const Node* add = node_of(v);
    const int side = param_behind(add->inputs[1][0]) >= 0   ? 1
                     : param_behind(add->inputs[0][0]) >= 0 ? 0
                                                            : -1;
    if (side < 0) fail(add->where() + ": the neck's bias add has no parameter operand");
    t.conv_bias = param_behind(add->inputs[side][0]);
    v = single_use(add->inputs[1 - side][0], *add);
    const Node* mm = expect(v, "matmul", "the FC neck's matmul");
    const MatmulAttr& a = mm->attrs<MatmulAttr>();
    if (a.trans_x || a.trans_y || a.alpha != 1.f)
      fail(mm->where() + ": the neck's matmul transposes or scales");
    t.conv_weight = param_of(*mm, 1, "Y");
    const std::vector<int64_t>& wd = p_.params[t.conv_weight].tensor.dims;
    if (wd.size() != 2 || wd[0] < 1 || wd[1] < 1)
      fail(mm->where() + ": the neck's weight is not [in, dim]");
    t.in = wd[0];
    t.dim = wd[1];
    if (p_.params[t.conv_bias].tensor.numel() != t.dim)
      fail("parameter " + p_.params[t.conv_bias].name + " is not the neck's bias of " +
           std::to_string(t.dim));
    t.pooled = single_use(mm->inputs[0][0], *mm);
    const std::vector<int64_t>& pd = p_.values[t.pooled].type.dims;
    if (pd.size() != 2 || (pd[1] >= 0 && pd[1] != t.in))
      fail(mm->where() + ": the neck's input is not [N, " + std::to_string(t.in) + "]");
    return t;
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw ModelError(code::kUnsupported, dir_, -1, "",
                     "not a PP-ShiTuV2_rec tail (global average pool -> 1x1 conv + bias -> "
                     "dropout -> flatten -> batch_norm -> output) nor a CLIP one (mean -> "
                     "matmul + bias -> output): " +
                         why);
  }
  const Node* node_of(ValueId v) const {
    auto it = producer_.find(v);
    return it == producer_.end() ? nullptr : &ex_.nodes()[it->second];
  }
  static bool is_identity(const Node& n) {
    const std::string& op = n.def->name;
    if (op == "assign") return true;
    if (op != "scale") return false;
    const UnState& s = n.attrs<UnState>();
    return s.kind == UnKind::Identity || (s.kind == UnKind::Scale && s.a == 1 && s.b == 0);
  }
  const Node* expect(ValueId v, const char* op, const char* what) const {
    const Node* n = node_of(v);
    if (n == nullptr) fail(std::string("no ") + what + " (the value comes from no op)");
    if (n->def->name != op) fail(n->where() + " stands where " + what + " should (" + op + ")");
    return n;
  }
  // An adaptive pool's output size is 1x1: the legacy ksize attribute, or PIR's kernel-size
  // operand when it is a constant, else the output's declared dims.
  bool adaptive_to_1x1(const Node& pool, const PoolState& ps) const {
    if (!ps.ksize.empty()) return ps.ksize.size() == 2 && ps.ksize[0] == 1 && ps.ksize[1] == 1;
    if (pool.inputs.size() > 1 && !pool.inputs[1].empty()) {
      const Value& k = p_.values[pool.inputs[1][0]];
      if (k.constant && k.constant->numel() == 2 && k.constant->dtype == DType::Int64) {
        const int64_t* d = reinterpret_cast<const int64_t*>(k.constant->data());
        return d[0] == 1 && d[1] == 1;
      }
    }
    const std::vector<int64_t>& dims = p_.values[pool.outputs[0][0]].type.dims;
    return dims.size() == 4 && dims[2] == 1 && dims[3] == 1;
  }
  bool is_param(ValueId v) const { return v != kNoValue && p_.values[v].param_index >= 0; }
  // The parameter `v` is, or the one it is a reshape of (PIR exports reshape a conv bias [C] to
  // [1, C, 1, 1] before the add: a node of its own, or a folded constant); -1 if neither.
  int32_t param_behind(ValueId v) const {
    if (v == kNoValue) return -1;
    if (is_param(v)) return p_.values[v].param_index;
    auto is_reshape = [](const std::string& t) {
      return t.find("reshape") != std::string::npos || t.find("unsqueeze") != std::string::npos;
    };
    if (const Node* n = node_of(v)) {
      if (!is_reshape(n->def->name) || n->inputs.empty() || n->inputs[0].empty()) return -1;
      return is_param(n->inputs[0][0]) ? p_.values[n->inputs[0][0]].param_index : -1;
    }
    if (!p_.values[v].constant || p_.blocks.empty()) return -1;
    for (const Op& op : p_.blocks[0].ops) {
      bool makes_v = false;
      for (const OpSlot& s : op.outputs)
        for (ValueId o : s.args) makes_v = makes_v || o == v;
      if (!makes_v) continue;
      if (!is_reshape(op.type) || op.inputs.empty() || op.inputs[0].args.empty()) return -1;
      return is_param(op.inputs[0].args[0]) ? p_.values[op.inputs[0].args[0]].param_index : -1;
    }
    return -1;
  }
  int32_t param_of(const Node& n, size_t slot, const char* name) const {
    if (n.inputs.size() <= slot || n.inputs[slot].empty() || !is_param(n.inputs[slot][0]))
      fail(n.where() + ": its " + name + " is not a parameter");
    return p_.values[n.inputs[slot][0]].param_index;
  }
  // `v`, checked to feed only `user` (the tail is a chain).
  ValueId single_use(ValueId v, const Node& user) const {
    auto it = consumers_.find(v);
    if (it != consumers_.end() && it->second > 1)
      fail(user.where() + ": its input is used elsewhere too");
    return v;
  }

  const Executor& ex_;
  const Program& p_;
  std::string dir_;
  std::map<ValueId, size_t> producer_;
  std::map<ValueId, int> consumers_;
};

}  // namespace

std::vector<RepBlock> find_stage_blocks(const Executor& ex, const ShituTail& t,
                                        const std::string& model_dir, int count) {
  if (ex.hpi())
    throw ModelError(code::kInvalidArg, model_dir, -1, "", "find_stage_blocks: normal mode only");
  if (t.clip)
    throw ModelError(code::kUnsupported, model_dir, -1, "",
                     "the CLIP models have no convolution stages to train (tier head only)");
  return TailFinder(ex, model_dir).blocks(t, count);
}

ShituTail find_shitu_tail(const Executor& ex, const std::string& model_dir) {
  if (ex.hpi())
    throw ModelError(code::kInvalidArg, model_dir, -1, "", "find_shitu_tail: normal mode only");
  return TailFinder(ex, model_dir).find();
}

}  // namespace train
}  // namespace pif
