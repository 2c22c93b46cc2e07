"""The one table of sizes: every notebook and every mfcore function reads its sizes from a :class:`Profile`.

Two profiles exist: ``smoke`` (CPU, every notebook in about two minutes on 2 cores, tiny images) and ``full`` (one GPU,
the papers' shapes where affordable: 256² images, 64² heatmaps). Notebooks never invent sizes; they read
``profile.<section>.<field>``.

Each chapter owns one section (a frozen dataclass). Adding a size means adding a field to that section with a value in
both profiles below.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from dataclasses import dataclass, field

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class GeometrySizes:
    """Chapter 01: the fusion-geometry argument of MetaFuse Sec. 3-4.1."""

    heatmap_px: int = 32  # side of the heatmap on which ideal epipolar weights are drawn
    param_count_sides_px: tuple[int, ...] = (16, 32, 64, 80)  # heatmap sides in the NaiveFuse vs factorised table
    affine_fit_steps: int = 200  # Adam steps fitting one θ_i per pixel (all pixels in one batch)
    affine_fit_pixels: int = 256  # (camera pair, view-1 pixel) maps in the affine-fit evidence, spread evenly over the
    #                               12 ordered pairs of the 4-camera rig (all pixels of a pair if the share >= side²)
    affine_fit_lr: float = 0.02  # Adam rate of the affine fits (θ in normalised coordinates, base map values in [0, 1])
    line_sigma_px: float = 1.0  # σ of the ideal epipolar weight map exp(−d²/2σ²), heatmap pixels
    camera_moves: int = 5  # camera-2 positions in the "moving camera 2" figure (Fig. 3/4), evenly on the arc
    camera_move_arc_deg: float = 30.0  # camera 2 moves from −arc to +arc degrees about the volume's vertical axis
    camera_move_pixels: int = 32  # view-1 pixels whose lines are followed as camera 2 moves
    explorer_grid: int = 4  # pixels per axis in the static "pixels and their epipolar lines" figure


@dataclass(frozen=True)
class StudioSizes:
    """Chapter 02: the synthetic capture studio (render + data)."""

    image_px: int = 64  # square input image side
    heatmap_px: int = 16  # square heatmap side (image_px / 4, as SimpleBaseline)
    heatmap_sigma_px: float = 0.5  # Gaussian target σ in heatmap pixels (σ=2 at 64², scaled with the side)
    preview_frames: int = 4  # frames drawn in the notebook
    occlusion_frames: int = 64  # frames per rig for the occlusion statistics
    bench_batch: int = 16  # images per render call in the throughput benchmark
    bench_repeats: int = 3


@dataclass(frozen=True)
class BackboneSizes:
    """Warm-up of the SimpleBaseline 2D network (MetaFuse Sec. 4.2, 5.1)."""

    resnet_depth: int = 10  # 10/18/34/50; the paper uses 50
    width: int = 16  # channels of the first ResNet stage (64 in the standard ResNet)
    deconv_channels: int = 32  # channels of the three deconvolutions (256 in SimpleBaseline)
    warmup_frames: int = 48  # multi-view training frames for warm-up, split over dome / h36m / totalcapture
    warmup_epochs: int = 6  # the paper: 30, lr 1e-3 → 1e-4 at 15 → 1e-5 at 25 (scaled: 1/2 and 5/6 of the epochs)
    batch_size: int = 32
    lr: float = 1e-3


@dataclass(frozen=True)
class MetaFuseSizes:
    """Chapters 03-04: NaiveFuse / AffineFuse / MetaFuse, meta-training and few-shot finetuning."""

    pretrain_frames: int = 64  # dome frames (the 20 training views) with cached heatmaps for meta-training
    meta_iterations: int = 40  # outer steps of Eq. (6)
    meta_tasks_per_step: int = 4  # ordered camera pairs per outer step
    task_train: int = 4  # |D_train| frames per task
    task_test: int = 4  # |D_test| frames per task
    inner_lr: float = 0.5  # α of Eq. (4)-(5), plain SGD; stable below ≈ 1/Σx² of a heatmap = 1/(πσ²) (σ in px)
    outer_lr: float = 1e-2  # meta-training / pre-training Adam rate (Sec. 5.1: 1e-3; raised for the short smoke run)
    finetune_lr: float = 5e-3  # meta-testing Adam rate (Sec. 5.1)
    finetune_steps: int = 10
    shots: tuple[int, ...] = (8, 16, 32)  # K of Fig. 7 (the paper: 50, 100, 200, 500)
    target_train_frames: int = 32  # labelled pool on the target rig (must hold the largest K)
    target_test_frames: int = 48  # held-out test segments of the training motion types on the target rig (headline)
    stress_test_frames: int = 16  # stress motion types (absent from training) on the target rig: own rows, kept smaller
    trials: int = 1  # draws of 4 of the dome's 6 held-out cameras
    speed_batch: int = 4  # frames per fusion step in the chapter's speed table (B=32 on the GPU, as the benchmark)
    speed_repeats: int = 3  # timed repetitions (median) in the chapter's speed table
    first_order: bool = False  # first-order MAML (drops the second-order terms of Eq. (6))
    meta_task_chunk: int = 0  # tasks per seed in one forward/backward of an outer step; 0: as many as fit the device
    batch_size: int = 8  # frames per fusion training step (pre-training, NaiveFuse^full, finetuning: min(K, this))
    pretrain_steps: int = 15  # plain Adam steps of the NaiveFuse^K / AffineFuse^K pre-training (Table 1)
    pretrain_views: tuple[int, ...] = (0, 5, 10, 15)  # the 4 selected dome cameras of that pre-training
    full_steps: int = 10  # Adam steps of NaiveFuse^full on the whole target pool
    # training seeds of every fusion model (meta-training's draws, pre-training's and finetuning's mini-batches, the K
    # frames): every Fig. 7 setting once per seed, the seeds of one method trained as one program; the backbone is one
    fusion_seeds: tuple[int, ...] = (0,)  # one at smoke (its CPU time; the batched seeds are unit-tested), 3 at full


@dataclass(frozen=True)
class ControlsSizes:
    """Chapter 4c (10_metafuse_decided): the controls that decide MetaFuse, its plan's sizes. The book's meta-training
    makes ``metafuse.meta_iterations × meta_tasks_per_step`` task updates (full: 500 × 8 = 4,000); the paper's regime
    at least 20× that on a pool of at least 5,000 dome frames (full)."""

    variants: tuple[str, ...] = ("a", "b", "c")  # the readings of the objective (mfcore.objectives), each run through all
    dome_trials: int = 1  # draws of the dome's held-out cameras here (chapter 4 runs metafuse.trials of them)
    seeds: int = 1  # the first this-many of metafuse.fusion_seeds (full: all 3)
    full_seeds: int = 1  # seeds of AffineFuse^full, and of NaiveFuse^full under (b) and (c) ((a): chapter 4's, all)
    paper_pool_frames: int = 96  # dome frames (20 training views) of the paper-regime meta-training
    paper_meta_iterations: int = 40  # its outer steps: × paper_tasks_per_step task updates (smoke: 2× the book's 160)
    paper_tasks_per_step: int = 8
    regime_seeds: int = 1  # fusion seeds of the paper-regime and second-order meta-trainings (the first ones)
    second_order: bool = True  # meta-train (a) also with the second-order terms of Eq. (6)


@dataclass(frozen=True)
class EndToEndSizes:
    """Chapter 4b: NaiveFuse^full end to end (:mod:`mfcore.endtoend`): the backbone and the fusion layers trained
    together from the warm-up checkpoint on a target rig's labelled frames, rendered on the device."""

    pool_frames: int = 48  # labelled multi-view frames of the target rig (its training motions; the paper: all of them)
    epochs: int = 2  # passes over the pool; the warm-up's step schedule (rates /10 at 1/2 and 5/6 of the epochs)
    batch_frames: int = 8  # multi-view frames per Adam step (every view of a frame in the same step, as Eq. (3) needs)
    backbone_lr: float = 1e-4  # Adam rate of the backbone: the warm-up's rate after its first drop (it starts trained);
    # the fusion weights move at NaiveFuse^full's rate, ``metafuse.outer_lr``


@dataclass(frozen=True)
class PictorialSizes:
    """Chapter 05: triangulation, PSM and RPSM (Cross View Fusion)."""

    # PSM bins per axis around the estimated root: odd, so that the cube's centre (the estimated root) is a bin centre
    # (Cross View Fusion uses 16, whose centre falls on a cell corner). 15 at full, not 17: the PSM's max-plus messages
    # cost G⁶ per limb and frame, so 15³ costs 0.68× the paper's 16³ (17³: 1.44×), which pays for the 7 stages added
    # to reach the paper's 10, and the 10 stages bring any of these grids to a last cell below 0.3 mm. 7 at smoke (the
    # smoke's 16² heatmaps are coarser than any of these cells; 7³ costs 0.45× the former 8³).
    grid_bins: int = 7
    cube_size_mm: float = 2000.0  # side of the PSM cube
    rpsm_stages: int = 10  # refinement stages after the PSM, as Cross View Fusion Sec. 4 (each joint's grid halves)
    rpsm_bins: int = 2  # bins per axis of each joint's refinement grid (2×2×2 in the paper)
    test_frames: int = 32  # test poses of the robustness study
    quant_frames: int = 32  # the first of them in the quantisation study (24³ bins: ≈ 3 G message terms a pose)
    bench_frames: int = 16  # frames timed by benchmarks/bench_rpsm.py
    bench_batch: int = 8  # frames per batched call in the benchmark (64 on the GPU)
    quant_grid_bins: tuple[int, ...] = (4, 6, 8)  # PSM grid sizes in the quantisation study
    quant_max_stages: int = 4  # RPSM stage counts 0..this in the quantisation study
    stats_frames: int = 2000  # training poses behind the limb-length statistics
    outlier_fractions: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3)  # misplaced heatmap peaks in the robustness study
    batch_frames: int = 64  # frames per call of the 3D estimators
    antialias: bool = True  # smooth heatmaps to each grid's scale before reading them (False: the paper's unary)
    savgol_window: int = 9  # frames of the Savitzky-Golay filter over a test sequence (MetaFuse Sec. 5.3), odd
    savgol_polyorder: int = 2
    sequence_frames: int = 12  # at most this many frames of each clip's held-out test segment in the smoothing study
    sequence_clips: int = 3  # at most this many test segments (the library's order) in the smoothing study
    sequence_fps: float = 30.0  # the test segments are resampled to this rate: the filter's window spans 0.3 s in each


@dataclass(frozen=True)
class LiftSizes:
    """Chapter 08's round trip of ``python -m mfbook.lift`` (your detections → 3D poses): the rig's test frames written
    as detection files and read back through the command."""

    demo_frames: int = 8  # the first test frames of the rig written in each detection format (heatmaps: 17 maps each)


@dataclass(frozen=True)
class TrainableFusionSizes:
    """Chapter 06: Tekin et al.'s two-stream network with a trainable fusion stream.

    Every configuration is trained for ``steps`` Adam steps of ``batch_size`` samples, its seeds (and, for the fusion
    networks, its fusion settings) as members of one batched program (:mod:`mfcore.trainable_fusion.training`)."""

    layers: int = 6  # L: L−2 conv blocks + 2 FC layers per stream; fusion can happen before any of layers 1..L+1
    channels: int = 16  # per data stream (the fusion stream has 2×); FC layers have 8× as many neurons
    crop_px: int = 32  # side of the person crop the networks read (confidence maps: crop_px / 4)
    dropout: float = 0.25  # after every hidden FC layer (Sec. 3.1 "dropout"; the paper gives no rate)
    seeds: int = 3  # network seeds (initial weights, minibatch order, dropout) per configuration: mean ± sd, paired
    train_frames: int = 512  # rendered single-view training samples (train motions, all rigs and views): the pool
    test_frames: int = 128  # test samples (test motions); Fig. 7 uses up to 128 of them, as the paper
    steps: int = 40  # Adam steps per network (every configuration, every seed, every learning-curve point)
    batch_size: int = 16
    lr: float = 1e-3  # Adam for the network θ (Sec. 3.1)
    fusion_lr: float = 1e-3  # Adam for α and β: the paper's rate (Sec. 3.1)
    lambda_alpha: float = 0.5  # λ of Eq. (4): λ/α² at α=0.1 is 50, about the standardised data term (≈ 48) at the start
    record_every: int = 1  # Fig. 5's history keeps every this-many-th step (and the first and last)
    curve_points: int = 2  # ImageOnly's learning curve: the pool and its halvings (train_frames / 2^k, k < this)
    sweep_seeds: int = 1  # seeds of the sweep of fusion fixed at every β (0: no sweep)
    grouped_conv: bool = True  # members' convolutions as one grouped kernel (False: one dense kernel per member)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    geometry: GeometrySizes = field(default_factory=GeometrySizes)
    studio: StudioSizes = field(default_factory=StudioSizes)
    backbone: BackboneSizes = field(default_factory=BackboneSizes)
    metafuse: MetaFuseSizes = field(default_factory=MetaFuseSizes)
    endtoend: EndToEndSizes = field(default_factory=EndToEndSizes)
    pictorial: PictorialSizes = field(default_factory=PictorialSizes)
    lift: LiftSizes = field(default_factory=LiftSizes)
    controls: ControlsSizes = field(default_factory=ControlsSizes)
    trainable_fusion: TrainableFusionSizes = field(default_factory=TrainableFusionSizes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CPU smoke scale: every notebook in about two minutes on 2 cores; numbers are not meaningful",
    ),
    # The full profile's counts (frames, steps, trials) are set so that the whole book runs in under ten minutes on
    # one H100/H200 (measured per chapter in results/full/benchmarks.csv); they were cut for time only, never to make
    # a result come out one way or the other. Shapes are the papers' where affordable. Cuts so far: warm-up frames
    # 6000 -> 4500, dome trials 3 -> 2, target test frames 500 -> 300 (each of them
    # 300 frames x 4 views x 17 joints = 20,400 joint detections per rig and trial).
    "full": Profile(
        name="full",
        description="one GPU: the papers' shapes where affordable (256² images, 64² heatmaps)",
        geometry=GeometrySizes(heatmap_px=64, affine_fit_steps=400, affine_fit_pixels=6144, camera_moves=7,
                               camera_move_pixels=1024),
        studio=StudioSizes(image_px=256, heatmap_px=64, heatmap_sigma_px=2.0, preview_frames=4,
                           occlusion_frames=2048, bench_batch=512, bench_repeats=10),
        backbone=BackboneSizes(resnet_depth=18, width=64, deconv_channels=256, warmup_frames=4500, warmup_epochs=6,
                               batch_size=128, lr=1e-3),
        metafuse=MetaFuseSizes(pretrain_frames=600, meta_iterations=500, meta_tasks_per_step=8, task_train=8,
                               task_test=8, inner_lr=0.05, outer_lr=1e-3, finetune_steps=200,
                               shots=(50, 100, 200, 500), target_train_frames=1000, target_test_frames=300,
                               stress_test_frames=100, trials=2,
                               first_order=True, batch_size=32, pretrain_steps=1000, full_steps=1000,
                               fusion_seeds=(0, 1, 2),
                               speed_batch=32, speed_repeats=10),
        endtoend=EndToEndSizes(pool_frames=10000, epochs=2, batch_frames=32, backbone_lr=1e-4),
        lift=LiftSizes(demo_frames=64),  # 64 frames × 5 views of 64² heatmaps: 89 MB per heatmap format
        # the paper's regime: 1,250 outer steps × 64 tasks = 80,000 task updates (20× the book's 4,000) on 5,000 frames
        # cut for time (the one GPU's 600 s): AffineFuse^full, and NaiveFuse^full under (b) and (c), one training seed
        # each (a 1,000-step whole-pool model costs about 4.4 s of an H100; three seeds of all 24 would add ~3 min)
        controls=ControlsSizes(dome_trials=1, seeds=3, full_seeds=1, paper_pool_frames=5000,
                               paper_meta_iterations=1250, paper_tasks_per_step=64, regime_seeds=1, second_order=True),
        pictorial=PictorialSizes(grid_bins=15, test_frames=1000, quant_frames=250, bench_frames=512, bench_batch=64,
                                 quant_grid_bins=(4, 8, 12, 16, 24), quant_max_stages=6, stats_frames=20000,
                                 sequence_frames=60, sequence_clips=32),
        # Tekin in the paper's regime: Adam at 10⁻³ for θ, α and β; 2600 steps, 10× the 260 steps of the first full
        # runs (Adam moves a parameter by at most about its rate per step, so β can move up to 2.6 layers of 0..L;
        # 4000 steps, enough to reach either end from L/2, cost 50 s more of the one GPU's 600 s, measured by
        # benchmarks/bench_tekin_ensemble.py at 36 ms a step on an H100: cut for time). One network's step is launch-bound on the H200 (3.5-9 ms whatever the
        # batch from 128 to 512), so the seeds and fusion settings are members of one batched program; that program
        # is then bound by arithmetic (the complete architecture costs ~1 GFLOP per sample for a forward and backward
        # pass, the first fusion convolution at 32² half of it; the book's ResNet-18 trains at ~50 TFLOP/s), so the
        # batch is 64: 12 fusion members × 64 samples ≈ 0.75 TFLOP a step. A pool of 65,536 rendered samples (the
        # studio renders ~15,000 images/s; 8.7 GB of float16 crops on the GPU) for ImageOnly's learning curve at
        # 2,048 .. 65,536 samples. The sweep of fixed β is off (sweep_seeds = 1 adds 7 fusion members, ~+60 % of
        # the fusion program). benchmarks/bench_tekin_ensemble.py prints every program's step time and the
        # chapter's estimated training seconds at these sizes: run it before changing them.
        trainable_fusion=TrainableFusionSizes(layers=8, channels=64, crop_px=128, train_frames=65536, test_frames=2000,
                                              steps=2600, batch_size=64, lr=1e-3, record_every=20, curve_points=6,
                                              sweep_seeds=0),
    ),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; an unknown name is a ``ValueError`` naming it and the valid choices."""
    if not isinstance(name, str) or name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(sorted(PROFILES))}")
    return PROFILES[name]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA if available else CPU; ``"cuda"`` without CUDA is a ``ValueError`` naming the choices."""
    if device not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {device!r}; valid devices: {', '.join(DEVICE_CHOICES)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available on this machine; "
                         f"valid devices here: auto, cpu")
    return torch.device(device)


def device_name(device: torch.device) -> str:
    """A device in words: the GPU's name, or the CPU's with its core count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
