#!/usr/bin/env python3
"""The PyTorch and onnxruntime side of bench/side_by_side.sh (issue 10).

Builds csgis's networks in PyTorch, layer for layer as src/model/ defines them:

* CSGIS-Net / JESS `HDC_edge_refine` (src/model/csgis.rs, rhdc.rs, layers.rs): conv 3->C, N rHDC
  blocks (conv-BN-ReLU with dilations 1, 2, 3 and an identity skip), edge interpreter
  (conv-BN-ReLU x2, conv C->1), smooth interpreter on [F | E] (conv-BN-ReLU, 3 rHDC,
  conv-BN-ReLU, conv C->3 = S0), refinement on [F | E | S0] (conv-BN-ReLU, 6 rHDC, conv C->3);
  S1 = S0 + R. Every conv is 3x3 with bias and "same" padding (padding = dilation).
* csgis-lite (src/model/lite.rs): widths 16/32/64/128, LiteConfig::layers in order, 2x2 average
  pooling down, a conv at the coarse scale + nearest x2 up + additive skip + ReLU + conv-ReLU up,
  dilated bottleneck (2, 4, 2) with a skip, E = edge(D), S0 = x + smooth(D),
  S1 = S0 + refine.1(relu(refine.0([D | E | S0]))), input edge-padded to a multiple of 8.

and the training objective of benches/train_step.rs (paper eq. 11 without the VGG/DeepLab terms):
0.001 * class-balanced edge BCE (summed; src/train/losses/edge.rs) + L_re(S0) + L_re(S1)
(L1 mean + sum over a 4-level 2x2 max-pool pyramid of 1 - SSIM, SSIM with the 11x11 Gaussian
window, sigma 1.5, zero padding, run separably on the five stacked statistics as
src/train/losses/ssim.rs + blur.rs do) + L_DTV(S0) + L_DTV(S1) (edge-masked L1 mean + masked
anisotropic TV mean; dtv.rs), then Adam (lr 1e-3, PyTorch defaults otherwise).

Timing as the Rust benches: a train step is zero_grad + forward (BatchNorm in train mode) +
loss + backward + Adam step, one warm-up then the median of 3. Inference is eval mode with
BatchNorm folded into the convolutions (as csgis folds it), under torch.inference_mode, one
warm-up then the median of 3 (2 at 512^2); onnxruntime runs the same folded network exported
with torch.onnx.export, graph optimisation ORT_ENABLE_ALL, intra-op threads = --threads,
inter-op threads 1, sequential execution. All three outputs (E, S0, S1) are computed.

Prints one JSON object per measurement on stdout (seconds in "torch" / "ort");
bench/side_by_side_report.py joins them with the cargo benches' tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

SMOOTH_BLOCKS = 3
REFINE_BLOCKS = 6


# ---------------------------------------------------------------- networks


def conv3x3(c_in: int, c_out: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=True)


class ConvBn(nn.Module):
    """conv3x3 -> BatchNorm2d (eps 1e-5, momentum 0.1) -> ReLU (src/model/layers.rs ConvBn)."""

    def __init__(self, c_in: int, c_out: int, dilation: int = 1):
        super().__init__()
        self.conv = conv3x3(c_in, c_out, dilation)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))

    def fold(self) -> nn.Module:
        fused = torch.nn.utils.fusion.fuse_conv_bn_eval(self.conv.eval(), self.bn.eval())
        return nn.Sequential(fused, nn.ReLU())


class Rhdc(nn.Module):
    """x + relu(bn3(conv3_d3(relu(bn2(conv2_d2(relu(bn1(conv1_d1(x))))))))) (src/model/rhdc.rs)."""

    def __init__(self, c: int):
        super().__init__()
        self.convs = nn.ModuleList([ConvBn(c, c, d) for d in (1, 2, 3)])

    def forward(self, x):
        y = x
        for conv in self.convs:
            y = conv(y)
        return y + x


def _fold(module: nn.Module) -> nn.Module:
    """Replaces every ConvBn (at any depth) by its folded conv + ReLU."""
    for name, child in list(module.named_children()):
        if isinstance(child, ConvBn):
            setattr(module, name, child.fold())
        else:
            _fold(child)
    return module


class CsgisNet(nn.Module):
    """src/model/csgis.rs, the JESS/CSGIS HDC_edge_refine backbone."""

    def __init__(self, blocks: int, channels: int):
        super().__init__()
        c = channels
        self.conv_in = conv3x3(3, c)
        self.features = nn.Sequential(*[Rhdc(c) for _ in range(blocks)])
        self.edge_convs = nn.Sequential(ConvBn(c, c), ConvBn(c, c))
        self.edge_out = conv3x3(c, 1)
        self.smooth_in = ConvBn(c + 1, c)
        self.smooth_blocks = nn.Sequential(*[Rhdc(c) for _ in range(SMOOTH_BLOCKS)])
        self.smooth_mid = ConvBn(c, c)
        self.smooth_out = conv3x3(c, 3)
        self.refine_in = ConvBn(c + 4, c)
        self.refine_blocks = nn.Sequential(*[Rhdc(c) for _ in range(REFINE_BLOCKS)])
        self.refine_out = conv3x3(c, 3)

    def forward(self, x):
        f = self.features(self.conv_in(x))
        e = self.edge_out(self.edge_convs(f))
        x1 = torch.cat([f, e], 1)
        s0 = self.smooth_out(self.smooth_mid(self.smooth_blocks(self.smooth_in(x1))))
        x2 = torch.cat([x1, s0], 1)
        s1 = s0 + self.refine_out(self.refine_blocks(self.refine_in(x2)))
        return e, s0, s1


LITE_BOTTLENECK_DILATIONS = (2, 4, 2)


class LiteNet(nn.Module):
    """src/model/lite.rs, csgis-lite (no BatchNorm)."""

    def __init__(self, widths=(16, 32, 64, 128)):
        super().__init__()
        w0, w1, w2, w3 = widths
        d0, d1, d2 = LITE_BOTTLENECK_DILATIONS
        # LiteConfig::layers, in order: (c_in, c_out, dilation)
        spec = [
            ("enc0_0", 3, w0, 1), ("enc0_1", w0, w0, 1),
            ("enc1_0", w0, w1, 1), ("enc1_1", w1, w1, 1),
            ("enc2_0", w1, w2, 1), ("enc2_1", w2, w2, 1),
            ("enc3_0", w2, w3, 1),
            ("bottleneck_0", w3, w3, d0), ("bottleneck_1", w3, w3, d1), ("bottleneck_2", w3, w3, d2),
            ("up2", w3, w2, 1), ("fuse2", w2, w2, 1),
            ("up1", w2, w1, 1), ("fuse1", w1, w1, 1),
            ("up0", w1, w0, 1), ("fuse0", w0, w0, 1),
            ("edge", w0, 1, 1), ("smooth", w0, 3, 1),
            ("refine_0", w0 + 4, w0, 1), ("refine_1", w0, 3, 1),
        ]
        for name, ci, co, d in spec:
            self.add_module(name, conv3x3(ci, co, d))

    def _double(self, a, b, x):
        return F.relu(b(F.relu(a(x))))

    def _up(self, up, fuse, coarse, skip):
        u = F.interpolate(up(coarse), scale_factor=2, mode="nearest")
        return F.relu(fuse(F.relu(u + skip)))

    def forward(self, xs):
        h, w = xs.shape[-2], xs.shape[-1]
        ph, pw = (-h) % 8, (-w) % 8
        x = F.pad(xs, (0, pw, 0, ph), mode="replicate") if ph or pw else xs
        e0 = self._double(self.enc0_0, self.enc0_1, x)
        e1 = self._double(self.enc1_0, self.enc1_1, F.avg_pool2d(e0, 2))
        e2 = self._double(self.enc2_0, self.enc2_1, F.avg_pool2d(e1, 2))
        e3 = F.relu(self.enc3_0(F.avg_pool2d(e2, 2)))
        b = e3
        for conv in (self.bottleneck_0, self.bottleneck_1, self.bottleneck_2):
            b = F.relu(conv(b))
        b = b + e3
        d2 = self._up(self.up2, self.fuse2, b, e2)
        d1 = self._up(self.up1, self.fuse1, d2, e1)
        d0 = self._up(self.up0, self.fuse0, d1, e0)
        edge = self.edge(d0)
        s0 = x + self.smooth(d0)
        r = F.relu(self.refine_0(torch.cat([d0, edge, s0], 1)))
        s1 = s0 + self.refine_1(r)
        if ph or pw:
            edge, s0, s1 = (t[..., :h, :w] for t in (edge, s0, s1))
        return edge, s0, s1


# ---------------------------------------------------------------- losses


def gaussian_window(size=11, sigma=1.5) -> torch.Tensor:
    centre = size // 2
    g = torch.tensor([-((i - centre) ** 2) / (2 * sigma * sigma) for i in range(size)], dtype=torch.float64).exp()
    return (g / g.sum()).float()


SSIM_TAPS = gaussian_window()
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def ssim(x, y):
    """Mean SSIM, pytorch_ssim's definition, the window applied separably (ssim.rs + blur.rs)."""
    n, c, h, w = x.shape
    planes = n * c
    x1 = x.reshape(planes, 1, h, w)
    y1 = y.reshape(planes, 1, h, w)
    stacked = torch.cat([x1, y1, x1 * x1, y1 * y1, x1 * y1], 0)
    k = SSIM_TAPS.to(x.dtype)
    blurred = F.conv2d(stacked, k.view(1, 1, -1, 1), padding=(5, 0))
    blurred = F.conv2d(blurred, k.view(1, 1, 1, -1), padding=(0, 5))
    mu_x, mu_y, e_xx, e_yy, e_xy = blurred.split(planes, 0)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    num = (2 * mu_xy + SSIM_C1) * (2 * (e_xy - mu_xy) + SSIM_C2)
    den = (mu_xx + mu_yy + SSIM_C1) * ((e_xx - mu_xx) + (e_yy - mu_yy) + SSIM_C2)
    return (num / den).mean()


def recon_loss(s, gt, scales=4):
    """L1 (mean) + sum_i (1 - SSIM) over the 2x2 max-pool pyramid (recon.rs, weight 1)."""
    total = (s - gt).abs().mean()
    a, b = s, gt
    for level in range(scales):
        if level > 0:
            a, b = F.max_pool2d(a, 2), F.max_pool2d(b, 2)
        total = total + (1 - ssim(a, b))
    return total


def edge_loss(logits, edge_gt):
    """Class-balanced BCE with logits, summed over the batch (edge.rs)."""
    t = (edge_gt > 0.5).to(logits.dtype)
    total = t.numel()
    n_pos = float(t.sum())
    n_neg = total - n_pos
    weights = t * ((n_neg - n_pos) / total) + n_pos / total
    return F.binary_cross_entropy_with_logits(logits, t, weight=weights, reduction="sum")


def _masked_mean(v, mask, channels):
    count = float(mask.sum()) * channels
    total = (v * mask).sum()
    return total * 0 if count == 0 else total / count


def dtv_loss(s, gt, edge):
    """Edge-masked L1 mean + off-edge anisotropic TV mean, forward differences (dtv.rs)."""
    c = s.shape[1]
    on = (edge > 0.5).to(s.dtype)
    off = 1 - on
    l1 = _masked_mean((s - gt).abs(), on, c)
    dy = (s[:, :, 1:] - s[:, :, :-1]).abs()
    dx = (s[:, :, :, 1:] - s[:, :, :, :-1]).abs()
    tv = F.pad(dy, (0, 0, 0, 1)) + F.pad(dx, (0, 1))
    return l1 + _masked_mean(tv, off, c)


def total_loss(out, gt, edge):
    e, s0, s1 = out
    loss = edge_loss(e, edge) * 0.001
    loss = loss + recon_loss(s0, gt) + recon_loss(s1, gt)
    return loss + dtv_loss(s0, gt, edge) + dtv_loss(s1, gt, edge)


# ---------------------------------------------------------------- timing


def median_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def train_step_seconds(net, batch, crop):
    torch.manual_seed(0)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, 3, crop, crop)
    gt = torch.rand(batch, 3, crop, crop)
    edge = (torch.rand(batch, 1, crop, crop) >= 0.9).float()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = total_loss(net(x), gt, edge)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return median_time(step, 3)


def export_onnx(net, side, path):
    x = torch.rand(1, 3, side, side)
    kwargs = dict(input_names=["x"], output_names=["edge", "s0", "s1"], opset_version=18)
    warnings.filterwarnings("ignore")  # tracer warnings about the lite net's shape-dependent padding
    try:
        torch.onnx.export(net, (x,), path, dynamo=False, **kwargs)
    except Exception as first:  # the TorchScript exporter may be gone in a later torch
        print(f"side_by_side.py: TorchScript ONNX export failed ({first!r}); trying dynamo", file=sys.stderr)
        torch.onnx.export(net, (x,), path, dynamo=True, **kwargs)


def infer_seconds(net, side, repeats, threads, with_ort, tmpdir):
    x = torch.rand(1, 3, side, side)

    def run_torch():
        with torch.inference_mode():
            out = net(x)
            return float(out[2].sum())

    t_torch = median_time(run_torch, repeats)
    t_ort = None
    if with_ort:
        import onnxruntime as ort

        path = os.path.join(tmpdir, f"{type(net).__name__}_{side}.onnx")
        export_onnx(net, side, path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}

        def run_ort():
            out = sess.run(None, feed)
            return float(out[2].sum())

        t_ort = median_time(run_ort, repeats)
    return t_torch, t_ort


def folded(net):
    net.eval()
    return _fold(net) if isinstance(net, CsgisNet) else net


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-full", action="store_true", help="leave out the N 12, C 64 training row")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-infer", action="store_true")
    ap.add_argument("--no-onnx", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)

    def emit(**row):
        print(json.dumps(row), flush=True)

    import onnxruntime

    emit(
        kind="meta",
        torch=torch.__version__,
        ort=onnxruntime.__version__,
        torch_threads=torch.get_num_threads(),
        torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
    )

    if not args.skip_train:
        rows = [
            ("tiny (N 1, C 8)", lambda: CsgisNet(1, 8), 4, 64),
            ("tiny (N 1, C 8)", lambda: CsgisNet(1, 8), 8, 128),
            ("N 3, C 16", lambda: CsgisNet(3, 16), 4, 64),
            ("N 3, C 16", lambda: CsgisNet(3, 16), 8, 128),
            ("N 12, C 64", lambda: CsgisNet(12, 64), 4, 64),
            ("lite (16, 32, 64, 128)", lambda: LiteNet(), 12, 96),
        ]
        for name, make, batch, crop in rows:
            if args.skip_full and name == "N 12, C 64":
                continue
            s = train_step_seconds(make(), batch, crop)
            emit(kind="train", net=name, batch=batch, crop=crop, torch=s)
            print(f"# torch train {name} {batch}x{crop}^2: {s:.3f} s", file=sys.stderr, flush=True)

    if not args.skip_infer:
        with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
            n12 = folded(CsgisNet(12, 64))
            lite = folded(LiteNet())
            for name, net, side, repeats in [
                ("N 12, C 64", n12, 256, 3),
                ("N 12, C 64", n12, 512, 2),
                ("lite (16, 32, 64, 128)", lite, 1024, 3),
            ]:
                t, o = infer_seconds(net, side, repeats, args.threads, not args.no_onnx, tmp)
                emit(kind="infer", net=name, side=side, torch=t, ort=o)
                print(f"# infer {name} {side}^2: torch {t:.3f} s, ort {o}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
