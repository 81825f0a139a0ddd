// The training losses of the image-feature recipes (../shared/spec/architectures.md §3), with
// their gradients: PaddleClas's CELoss with label smoothing and TripletAngularMarginLoss
// (PP-ShiTuV2_rec). Plain loops over a batch: the head tier trains on cached features, so a
// batch is at most a few hundred rows of 512 to a few thousand classes.
//
// T is float (training) or double (the finite-difference tests); sums are in double either way.
#pragma once

#include <cstdint>

namespace pif {
namespace train {

// Softmax cross-entropy with label smoothing, the mean over rows of
//   -sum_c q_c * log_softmax(logits)_c,  q = (1 - epsilon) * onehot(label) + epsilon / classes.
// epsilon 0 is plain cross-entropy. Writes d loss / d logits to `grad` (rows x classes) unless it
// is null. Throws std::invalid_argument for a label outside [0, classes) or rows/classes < 1.
template <typename T>
double ce_label_smoothing(const T* logits, const int64_t* labels, int64_t rows, int64_t classes,
                          double epsilon, T* grad);

// TripletAngularMarginLoss: on L2-normalised rows u_i, cos_ij = u_i . u_j; for each anchor i the
// hardest positive ap_i = min over j with label_j == label_i (i itself included, as PaddleClas's
// masked min) and the hardest negative an_i = max over j with another label; the loss is
//   mean_i max(0, an_i - ap_i + margin)
// plus, with add_absolute, absolute_loss_weight * (mean_i max(0, ap_value - ap_i) + mean_i a_i),
// a_i = an_i - an_value when that is positive, else 1 (PaddleClas's constant, no gradient).
struct TripletAngularMarginOptions {
  double margin = 0.5;
  bool normalize = true;
  bool add_absolute = false;
  double absolute_loss_weight = 1.0;
  double ap_value = 0.9;
  double an_value = 0.5;
};

// The options of the PP-ShiTuV2_rec recipe: margin 0.5, absolute term 0.1 with 0.8 / 0.4.
TripletAngularMarginOptions shitu_v2_triplet_options();

// Writes d loss / d features to `grad` (rows x dim) unless it is null. Throws
// std::invalid_argument when a row has no negative (one label in the batch) or a zero norm.
template <typename T>
double triplet_angular_margin(const T* features, const int64_t* labels, int64_t rows, int64_t dim,
                              const TripletAngularMarginOptions& options, T* grad);

// PaddleClas's ArcMargin head followed by CELoss (the CLIP recipe, architectures.md §3.2): rows
// u_i = y_i / |y_i| and columns v_c = W_c / |W_c| of W [dim, classes] give cos_ic = u_i . v_c;
// the label column becomes phi = cos(acos(cos) + margin) (as cos * cos_m - sin * sin_m with
// sin = sqrt(1 - cos^2 + 1e-6)) where cos > cos(pi - margin), else cos - sin(pi - margin) *
// margin; logits = scale * that; the loss is ce_label_smoothing(logits, epsilon). Writes
// d loss / d y (rows x dim) and d loss / d W (dim x classes) unless null. Throws
// std::invalid_argument for a bad label or a zero row or column.
struct ArcMarginOptions {
  double margin = 0.2;
  double scale = 30;
  double epsilon = 0;  // CELoss's label smoothing (none in the CLIP recipe)
};

template <typename T>
double arc_margin_ce(const T* y, const T* w, const int64_t* labels, int64_t rows, int64_t dim,
                     int64_t classes, const ArcMarginOptions& options, T* dy, T* dw);

}  // namespace train
}  // namespace pif
