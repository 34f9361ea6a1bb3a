"""Factorization attention: FSAM (NMF), TSFM (label-constrained NMF) and GRBF-constrained NMF.

A head embedding ``E`` (B, C, T', H', W') becomes attention in four steps
(:class:`FactorizationAttention`):

1. ``X = ReLU(pre(E − min E))``: a 1×1×1 conv with bias to ``align_channels`` (8), made non-negative;
2. ``X`` is flattened to a matrix ``V`` (B, D, N) and approximated by a non-negative low-rank
   product ``V̂``: a few multiplicative updates under ``no_grad`` and one final update of the
   coefficients *with* gradient (the Hamburger "one-step gradient");
3. ``A = post2(ReLU(post1(V̂)))``: two bias-free 1×1×1 convs back to ``C`` channels;
4. :func:`excite`: ``E' = E + IN((E − min E + 1) ⊙ (A − min A + 1))`` (non-affine instance norm,
   global minima over the whole batch tensor, the constant 1 being the reference's ``bias1``).

The three factorizations differ only in the temporal basis:

* ``"fsam"`` — plain NMF, ``V ≈ W Hᵀ`` with ``W`` (D×R) initialised to ones/√D;
* ``"tsfm"`` — ``V ≈ (Φ w) Hᵀ`` with ``Φ = 1 + minmax(label)`` (D×1): the temporal basis *is* the
  target signal (MMRPhys's Target Signal constrained Factorization Module);
* ``"grbf"`` — the same with ``Φ`` a bank of Gaussian radial basis functions (label-free).

Matrix layout. The reference flattens ``X`` with ``view(B, T', C·H'·W')`` straight from the
contiguous (B, C, T', H', W') tensor, *without* a permute, so a "temporal" row of ``V`` holds a
block of consecutive time steps of one channel rather than one time step. ``layout="reference"``
(default) reproduces this because the published weights were trained with it;
``layout="time_major"`` permutes to (B, T', C, H', W') first so that row ``t`` is time step ``t``
(a different model: train it from scratch).
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from mmrphys.errors import ConfigError, InputError
from mmrphys.models.registry import name_hint

KINDS = ("none", "fsam", "tsfm", "grbf")
LAYOUTS = ("reference", "time_major")
# (sigma, centre step) of the reference's Gaussian RBF bank, plus one constant column.
_GRBF_BANK = ((6.0, 1), (8.0, 1), (12.0, 2), (15.0, 2), (18.0, 3), (24.0, 3))


def check_attention(kind: str, layout: str = "reference") -> None:
    """Raise :class:`ConfigError` for an unknown attention kind or layout."""
    if kind not in KINDS:
        raise ConfigError(f"attention must be one of {', '.join(KINDS)}; got {kind!r}")
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")


# ----------------------------------------------------------------------------- matrix layout
def to_matrix(x: torch.Tensor, layout: str = "reference") -> torch.Tensor:
    """(B, C, T, H, W) → (B, D=T, N=C·H·W), see the module docstring for the two layouts."""
    b, c, t, h, w = x.shape
    if layout == "time_major":
        return x.permute(0, 2, 1, 3, 4).reshape(b, t, c * h * w)
    return x.reshape(b, t, c * h * w)  # the reference's view without permute


def from_matrix(v: torch.Tensor, shape: torch.Size, layout: str = "reference") -> torch.Tensor:
    """Inverse of :func:`to_matrix`."""
    b, c, t, h, w = shape
    if layout == "time_major":
        return v.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)
    return v.reshape(b, c, t, h, w)


# ----------------------------------------------------------------------------- factorizations
def _eps(x: torch.Tensor) -> float:
    # The reference widens eps under autocast / half precision to keep the updates finite.
    if torch.is_autocast_enabled() or x.dtype in (torch.float16, torch.bfloat16):
        return 1e-3
    return 1e-6


def _update(x: torch.Tensor, num: torch.Tensor, den: torch.Tensor, eps: float) -> torch.Tensor:
    out = x * (num / den.clamp_min(eps))
    return torch.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0)


def nmf(v: torch.Tensor, rank: int = 1, steps: int = 4) -> torch.Tensor:
    """Plain NMF ``V ≈ W Hᵀ`` of a non-negative (B, D, N) batch; returns ``V̂`` (B, D, N).

    ``W`` starts at ones/√D and ``H₀ = softmax(Vᵀ W)`` over the rank; ``steps`` multiplicative
    updates of ``H`` then ``W`` run without gradient, and one last ``H`` update with gradient.
    """
    b, d, _ = v.shape
    eps = _eps(v)
    basis = F.normalize(v.new_ones(b, d, rank), dim=1)
    with torch.no_grad():
        coef = torch.softmax(v.transpose(1, 2) @ basis, dim=-1)
        for _ in range(steps):
            coef = _update(coef, v.transpose(1, 2) @ basis, coef @ (basis.transpose(1, 2) @ basis), eps)
            basis = _update(basis, v @ coef, basis @ (coef.transpose(1, 2) @ coef), eps)
    coef = _update(coef, v.transpose(1, 2) @ basis, coef @ (basis.transpose(1, 2) @ basis), eps)
    return basis @ coef.transpose(1, 2)


def constrained_nmf(v: torch.Tensor, phi: torch.Tensor, rank: int = 1, steps: int = 4) -> torch.Tensor:
    """Constrained NMF ``V ≈ (Φ W) Hᵀ`` with a fixed temporal dictionary ``Φ`` (B, D, K).

    ``W`` (K×R) starts uniform-random, L2-normalised over K (all ones for K = 1). Each step updates
    ``H``, then the effective basis ``Φ W`` multiplicatively and projects it back with ``Φᵀ``, as the
    reference does (not a pseudo-inverse). One final ``H`` update carries the gradient.
    """
    b, _, _ = v.shape
    k = phi.shape[-1]
    eps = _eps(v)
    weights = F.normalize(torch.rand(b, k, rank, dtype=v.dtype, device=v.device), dim=1)
    with torch.no_grad():
        basis = phi @ weights
        coef = torch.softmax(v.transpose(1, 2) @ basis, dim=-1)
        for _ in range(steps):
            basis = phi @ weights
            coef = _update(coef, v.transpose(1, 2) @ basis, coef @ (basis.transpose(1, 2) @ basis), eps)
            scaled = _update(basis, v @ coef, basis @ (coef.transpose(1, 2) @ coef), eps)
            weights = torch.nan_to_num(phi.transpose(1, 2) @ scaled, nan=0.0, posinf=1.0, neginf=0.0)
        basis = phi @ weights
    coef = _update(coef, v.transpose(1, 2) @ basis, coef @ (basis.transpose(1, 2) @ basis), eps)
    return basis @ coef.transpose(1, 2)


def label_constraint(label: torch.Tensor) -> torch.Tensor:
    """TSFM's dictionary ``Φ = 1 + minmax(label)`` per sample: (B, P) → (B, P, 1) in [1, 2]."""
    y = label.detach().float()
    lo = y.min(dim=1, keepdim=True).values
    hi = y.max(dim=1, keepdim=True).values
    return (1.0 + (y - lo) / (hi - lo).clamp_min(1e-8)).unsqueeze(-1)


def grbf_constraint(length: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The reference's Gaussian RBF bank (P, K): exp(−(t−c)²/(4σ²)) for six σ plus a constant column.

    Centres run over every sample for σ = 6, 8, every 2nd for 12, 15 and every 3rd for 18, 24,
    giving K = 661 columns for P = 180. (The reference writes exp(−0.5·d²/(2σ²)), so the effective
    standard deviation is σ√2.)
    """
    t = torch.arange(length, dtype=dtype, device=device)
    d2 = (t[:, None] - t[None, :]) ** 2
    cols = [torch.exp(-0.5 * d2[:, ::step] / (2.0 * sigma**2)) for sigma, step in _GRBF_BANK]
    cols.append(torch.ones(length, 1, dtype=dtype, device=device))
    return torch.cat(cols, dim=1)


# ----------------------------------------------------------------------------- modules
class FactorizationAttention(nn.Module):
    """The factorization module of FactorizePhys/MMRPhys (``fsam`` in the official checkpoints).

    ``forward(e, label=None)`` takes the head embedding ``e`` (not yet shifted) and returns
    ``(attention, factorized, error)``: the attention map ``A`` (same shape as ``e``), the
    reconstruction ``V̂`` (B, D, N) as a matrix, and the Frobenius error ‖X − V̂‖ (detached: logged
    only, as the reference puts no factorization loss in the objective).
    """

    def __init__(
        self,
        channels: int,
        kind: str = "fsam",
        align_channels: int = 8,
        rank: int = 1,
        steps: int = 4,
        layout: str = "reference",
    ):
        super().__init__()
        check_attention(kind, layout)
        if kind == "none":
            raise ConfigError("FactorizationAttention needs kind 'fsam', 'tsfm' or 'grbf'")
        self.kind, self.rank, self.steps, self.layout = kind, rank, steps, layout
        self.pre = nn.Conv3d(channels, align_channels, 1, bias=True)
        self.post1 = nn.Conv3d(align_channels, align_channels, 1, bias=False)
        self.post2 = nn.Conv3d(align_channels, channels, 1, bias=False)
        for conv in (self.pre, self.post1, self.post2):
            # Fan-out He init of the reference, for these convs only (bias keeps its default).
            nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / conv.out_channels))
        self._grbf_cache: dict[tuple, torch.Tensor] = {}

    @property
    def needs_label(self) -> bool:
        return self.kind == "tsfm"

    def _dictionary(self, v: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        b, d, _ = v.shape
        if self.kind == "tsfm":
            if label is None:
                raise InputError("TSFM attention needs the target signal in training mode: pass labels=")
            if label.shape != (b, d):
                raise InputError(f"TSFM label has shape {tuple(label.shape)}, the embedding needs ({b}, {d})")
            return label_constraint(label).to(v.dtype)
        key = (d, v.device, v.dtype)
        if key not in self._grbf_cache:
            self._grbf_cache[key] = grbf_constraint(d, v.device, v.dtype)
        return self._grbf_cache[key].expand(b, -1, -1)

    def factorize(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        """Non-negative low-rank reconstruction of ``x`` (B, C, T, H, W) as a (B, D, N) matrix."""
        v = to_matrix(x, self.layout)
        if self.kind == "fsam":
            return nmf(v, self.rank, self.steps)
        return constrained_nmf(v, self._dictionary(v, label), self.rank, self.steps)

    def forward(self, e: torch.Tensor, label: torch.Tensor | None = None):
        x = F.relu(self.pre(e - e.min()))
        v_hat = self.factorize(x, label)
        x_hat = from_matrix(v_hat, x.shape, self.layout)
        error = torch.linalg.vector_norm((x - x_hat).detach())  # logged only, never a loss
        attention = self.post2(F.relu(self.post1(x_hat)))
        return attention, v_hat, error


def excite(
    e: torch.Tensor, attention: torch.Tensor, residual: bool = True, bias: float = 1.0
) -> torch.Tensor:
    """``E + IN((E − min E + b) ⊙ (A − min A + b))`` (without ``E +`` when ``residual`` is False)."""
    x = (e - e.min() + bias) * (attention - attention.min() + bias)
    x = F.instance_norm(x, eps=1e-5)
    return e + x if residual else x


class Head(nn.Module):
    """A head: conv stream(s) → [factorization attention] → final layers → (B, T) signal.

    ``convs`` holds one conv stack per input stream (two for late fusion, whose embeddings are
    concatenated RGB first). ``attention`` is ``None`` for the Base model. ``label_pool`` maps the
    (B, T) label to the embedding's temporal length (the RSP head avg-pools it by 4).
    """

    def __init__(
        self,
        convs: list[nn.Sequential],
        final: nn.Sequential,
        attention: FactorizationAttention | None = None,
        residual: bool = True,
        label_pool: bool = False,
        attention_at_inference: bool = False,
    ):
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.attention = attention
        self.final = final
        self.residual = residual
        self.label_pool = label_pool
        if attention_at_inference and attention is not None and attention.needs_label:
            raise ConfigError("TSFM cannot run at inference (it needs the target signal); use fsam or grbf")
        self.attention_at_inference = attention_at_inference

    def unused_at_inference(self) -> list[nn.Module]:
        """The attention module when it runs in training only (left out of inference counts)."""
        return [self.attention] if self.attention is not None and not self.attention_at_inference else []

    def embed(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Head embedding at the attention point (the voxel embedding analysed in the paper)."""
        outs = [stack(f) for stack, f in zip(self.convs, feats)]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)

    def attention_active(self) -> bool:
        return self.attention is not None and (self.training or self.attention_at_inference)

    def forward_from_embedding(
        self, e: torch.Tensor, label: torch.Tensor | None = None, aux: dict | None = None
    ):
        if self.attention_active():
            if label is not None and self.label_pool:
                label = F.avg_pool1d(label.unsqueeze(1), kernel_size=5, stride=4, padding=2).squeeze(1)
            attention, v_hat, error = self.attention(e, label)
            e_att = excite(e, attention, self.residual)
            if aux is not None:
                aux.update(embedding=e, attention=attention, factorized=v_hat, excited=e_att, error=error)
            e = e_att
        elif aux is not None:
            aux.update(embedding=e, attention=None, factorized=None, excited=None, error=None)
        out = self.final(e)
        return out.flatten(1)  # (B, 1, T, 1, 1) → (B, T)

    def forward(self, feats: list[torch.Tensor], label: torch.Tensor | None = None, aux: dict | None = None):
        return self.forward_from_embedding(self.embed(feats), label, aux)


# ----------------------------------------------------------------------------- official checkpoints
def head_key_rules(official: str, ours: str) -> tuple[tuple[str, str], ...]:
    """Key rules from the authors' head ``official`` (``rppg_head``, ``rBr_head``) onto our :class:`Head`.

    Their attention is ``fsam.pre_conv_block.0`` (conv with bias), ``fsam.post_conv_block.0.conv`` and
    ``.1``; their final stack is ``final_layer.<i>`` (``conv_block_3d.0`` inside a ConvBlock3D).
    """
    o = re.escape(official)
    return (
        (rf"^{o}\.fsam\.pre_conv_block\.0\.(weight|bias)$", rf"{ours}.attention.pre.\1"),
        (rf"^{o}\.fsam\.post_conv_block\.0\.conv\.weight$", f"{ours}.attention.post1.weight"),
        (rf"^{o}\.fsam\.post_conv_block\.1\.weight$", f"{ours}.attention.post2.weight"),
        (rf"^{o}\.final_layer\.(\d+)\.conv_block_3d\.0\.weight$", rf"{ours}.final.\1.conv.weight"),
        (rf"^{o}\.final_layer\.(\d+)\.weight$", rf"{ours}.final.\1.weight"),
    )


def official_attention(keys, hints: dict, default: str) -> tuple[str, str]:
    """``(kind, note)``: the attention an official checkpoint was trained with.

    Attention weights (``*.fsam.*``) tell *that* one was used, not which: FSAM, TSFM and GRBF have
    the same weights. The kind comes from ``hints["attention"]``, else the file name (``RBF``,
    ``SFSAM_Label``/``TSFM``, ``FSAM``), else ``default``. None of them changes the eval network.
    """
    if not any(".fsam." in k for k in keys):
        return "none", "attention: none (no fsam weights)"
    if hints.get("attention"):
        return hints["attention"], f"attention: {hints['attention']} (argument)"
    hinted = name_hint(hints.get("file", ""), {"grbf": r"RBF", "tsfm": r"SFSAM_Label|TSFM", "fsam": r"FSAM"})
    if hinted:
        return hinted, f"attention: {hinted} (fsam weights; kind from file name)"
    return default, f"attention: {default} (fsam weights; kind not recorded, default)"
