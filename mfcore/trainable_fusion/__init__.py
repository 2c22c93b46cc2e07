"""Tekin et al.'s two-stream network with a trainable fusion stream (ICCV 2017, "Learning to fuse 2D and 3D image cues").

An *image stream* reads the image, a *confidence-map stream* reads the 17 confidence maps of the 2D backbone, and a
*fusion stream* reads, before each of its layers l + 1, the mixture of Eq. (1) of Tekin

    u_l = (1 − w_l) · concat(I_l, X_l) + w_l · Z_l ,        1 ≤ l ≤ L ,        u_0 = Z_0 = concat(I_0, X_0) ,

with the fusion weights of Eq. (3), ``w_l = sigmoid(α² (l − β))``. The network outputs Z_{L+1}: 17 root-relative 3D
joints in the camera frame, in metres.

The package, one concept a module:

* :mod:`.samples` — the single-view samples: person crops of the image and of the backbone's maps, targets, clips;
* :mod:`.layers` — layers holding M networks at once (an ensemble as one program);
* :mod:`.network` — Eq. (1) and (3): the fusion network, its configurations (Table 5), member selection, pruning;
* :mod:`.training` — Eq. (2) and (4) with Adam, every member with its own random streams;
* :mod:`.evaluation` — per-sample MPJPE / PA-MPJPE of every member, the context rows, inference time;
* :mod:`.analysis` — Fig. 7's stream correlation and the learning curve's last doubling.

Choices, each a scaled-down reading of the paper's Fig. 2/3 (sizes from ``profile.trainable_fusion``):

* **α² in Eq. (3).** We use the slope α² (as the authors' released code) rather than α: the sharpness can never turn
  negative, so w is always a non-decreasing step in l and "fuse at β" keeps its meaning (a trained model can always be
  pruned). The penalty of Eq. (4) stays λ/α² on the same parameter α. α starts at 0.1 (slope 0.01), β at L/2.
* **Input alignment.** Eq. (1) needs I_l and X_l of the same height and width. The confidence maps are at h = H/4, so
  I_0 is the image rearranged *losslessly* by space-to-depth (pixel unshuffle by 4): (3·16, h, w).
* **Layers.** L data layers per stream: L − 2 convolutional blocks (3×3 convolution, ReLU, then 2×2 max-pooling while
  the side stays ≥ 4) and 2 fully connected layers (ReLU, dropout), as Fig. 3's conv-then-FC design; the fusion stream
  has the channels of both streams added (Z_l has the size of concat(I_l, X_l), as Eq. (1) requires) plus its output
  layer L + 1, a linear map to 3·17. Data-stream convolutions have ``channels`` channels, FC layers 8× as many neurons.
* **Normalised, root-relative targets** standardised per joint and coordinate with the training poses; the loss of
  Eq. (2) is in those units, so every joint and coordinate weighs alike whatever its spread.
* **Dropout** after every hidden FC layer (Sec. 3.1: "dropout and data augmentation"; its rate is not given); the
  studio's pose, placement and scene sampling is the data augmentation.
* **Adam at 10⁻³** for the network and for α and β (Sec. 3.1), for ``steps`` steps: enough for β to reach either end
  of 0..L from L/2 at that rate.
* **λ** (``lambda_alpha``) makes λ/α² at the start about the standardised data term at the start, as the paper's
  5·10³ "renders the magnitude of both the regularization term and the main cost comparable" for its loss scale.
* **Ensembles.** Seeds, fusion settings and learning-curve sizes of one architecture train as members of one batched
  program; each member's initial weights, minibatch order and dropout masks follow its seed alone.
"""

from .analysis import CORRELATION_BLOCKS, correlation_blocks, last_doubling_gain, squared_pearson, stream_correlation_r2
from .evaluation import (PerfectLifter, build_perfect_lifter, errors_mm, evaluate_members, inference_ms_per_image,
                         mean_pose_errors, predict_joints_m)
from .network import (ALPHA_INIT, FC_LAYERS, FC_WIDTH_PER_CHANNEL, METHODS, STREAMS, TABLE5, FusionArchitecture,
                      FusionNet, build_fusion_family, build_fusion_net, count_parameters, fusion_layer,
                      indicator_fusion_weights, layer_generator, prune_fusion_net, select_members,
                      sigmoid_fusion_weights)
from .samples import (CROP_SCALE, MIN_POSE_SCALE_M, MONOCULAR_RIGS, MonocularSamples, PoseNormaliser,
                      camera_frame_root_relative, crop_sides_px, crop_square, make_monocular_samples, person_boxes_px,
                      to_crop_px)
from .training import (DropoutNoise, derived_seed, fit_fusion_method, fusion_family_plan, member_subsets,
                       minibatch_schedule, penalty_weights, pose_loss, sharpness_penalty, train_fusion_net)

__all__ = ["ALPHA_INIT", "build_fusion_family", "build_fusion_net", "build_perfect_lifter",
           "camera_frame_root_relative", "CORRELATION_BLOCKS", "correlation_blocks", "count_parameters", "CROP_SCALE",
           "crop_sides_px", "crop_square", "derived_seed", "DropoutNoise", "errors_mm", "evaluate_members",
           "FC_LAYERS", "FC_WIDTH_PER_CHANNEL", "fit_fusion_method", "fusion_family_plan", "fusion_layer",
           "FusionArchitecture", "FusionNet", "indicator_fusion_weights", "inference_ms_per_image",
           "last_doubling_gain", "layer_generator", "make_monocular_samples", "mean_pose_errors", "member_subsets",
           "METHODS", "MIN_POSE_SCALE_M", "minibatch_schedule", "MONOCULAR_RIGS", "MonocularSamples",
           "penalty_weights", "PerfectLifter", "person_boxes_px", "pose_loss", "PoseNormaliser", "predict_joints_m",
           "prune_fusion_net", "select_members", "sharpness_penalty", "sigmoid_fusion_weights", "squared_pearson",
           "stream_correlation_r2", "STREAMS", "TABLE5", "to_crop_px", "train_fusion_net"]
