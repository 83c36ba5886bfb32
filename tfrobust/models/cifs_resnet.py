"""CIFS ResNets (thesis ch. 4): a ResNet whose last blocks end in a CIFS layer.

Registers the residual block ``"cifs"`` in ``resnet.BLOCKS`` (a basic block, then — for the block
names listed in ``cifs_probes`` — a CIFS layer ``{name}_cifs`` whose masked features become the
block's output) and the models ``cifs_resnet`` (all options), ``cifs_resnet10`` (Fashion-MNIST
ResNet-10 of thesis App. 4.6.4: one basic block per stage, 64-128-256-512) and ``cifs_resnet18``.

Thesis placement (§4.4.1, Table 4.14): CIFS on the last two residual blocks, an MLP probe on the
penultimate and a linear probe on the last; top-2 relevance; softmax IMGF with T = 1; ℓβ with β = 2.
``cifs_blocks=0`` builds the same network without CIFS (the vanilla baseline).

Training: each CIFS layer adds β/L · CE(probe, y) through ``add_loss`` when it runs in training mode
inside ``tfrobust.layers.cifs.training_labels(y)``, so CE(final) + model.losses = (1+β)·ℓβ. Attacks:
``tfrobust.layers.cifs.probed_model`` gives the final and probe logits for ``AuxiliaryLoss.beta``;
``tfrobust.evaluation.defense_analyses.cifs_adaptive_evaluation`` runs the thesis' β_atk sweep.
"""

import functools

from tfrobust.core.auxiliary_loss import check_beta
from tfrobust.errors import TfrobustError, check_choice, check_int
from tfrobust.layers.cifs import CIFS, IMGFS, MASK_PATHS, PROBES
from tfrobust.models import components, registry, resnet

#: depth → (blocks per stage, widths per stage): ResNet-10 (reference ``ResNet_Gray_10``) + resnet's.
DEPTHS = {10: ((1, 1, 1, 1), (64, 128, 256, 512)), **resnet.DEPTHS}


@resnet.register_block("cifs")
def cifs_block(x, filters, stride, *, norm, conv, name, dropout=0.0, cifs_probes=None, num_classes=None,
               top_k=2, imgf="softmax", alpha=None, temperature=1.0, mask_scale=1.0, mask_path="full",
               probe_loss_weight=0.0):
    """A basic block followed, if ``name`` is a key of ``cifs_probes`` ({block name: probe}), by a CIFS
    layer ``{name}_cifs`` (arguments as in ``tfrobust.layers.CIFS``); its masked features are the
    block's output, ``{name}_out`` stays the un-masked block output."""
    y = resnet.basic_block(x, filters, stride, norm=norm, conv=conv, name=name, dropout=dropout)
    probe = (cifs_probes or {}).get(name)
    if probe is None:
        return y
    if num_classes is None:
        raise TfrobustError("the 'cifs' block needs block option num_classes")
    masked, _ = CIFS(num_classes, probe=probe, top_k=top_k, imgf=imgf, alpha=alpha, temperature=temperature,
                     mask_scale=mask_scale, mask_path=mask_path, probe_loss_weight=probe_loss_weight,
                     name=f"{name}_cifs")(y)
    return masked


def cifs_resnet(input_shape, num_classes, *, depth=None, stage_blocks=None, stage_widths=None,
                stem_width=None, strides=None, width=1.0, norm="batch", conv="standard", pooling="avg",
                dropout=0.0, cifs_blocks=2, probes=("mlp", "linear"), top_k=2, imgf="softmax", alpha=None,
                temperature=1.0, mask_scale=1.0, mask_path="full", beta=2.0,
                mean=None, std=None, upsample=1, upsample_interpolation="nearest"):
    """ResNet with CIFS on its last ``cifs_blocks`` residual blocks.

    Args:
      input_shape, num_classes, stage_blocks, stage_widths, stem_width, strides, width, norm, conv,
        pooling, mean, std, upsample, upsample_interpolation: as in ``resnet`` (``models/resnet.py``).
      depth: 10 (one block per stage, 64-128-256-512: the thesis' Fashion-MNIST ResNet-10), 18, 20
        or 56. Default 18 unless ``stage_blocks`` and ``stage_widths`` are given.
      dropout: dropout rate inside the blocks (default 0).
      cifs_blocks: how many of the last blocks get CIFS (thesis: 2); 0 builds the vanilla network.
      probes: one probe per CIFS block, earliest first ("mlp" or "linear"; a single string applies to
        all). Thesis: MLP on the penultimate block, linear on the last.
      top_k, imgf, alpha, temperature, mask_scale, mask_path: the CIFS layers' options (``mask_scale=
        "channels"`` keeps the features' scale; the default 1 is the paper's sum-to-1 mask, which trains
        slowly from scratch — see ``tfrobust.layers.CIFS``).
      beta: β of ℓβ (eq. 4.3, thesis default 2): each of the L CIFS layers adds β/L · CE(probe) in
        training mode with labels (see ``tfrobust.layers.cifs``); 0 leaves the probes untrained.

    Layer names: as ``resnet``, plus ``stage{s}_block{b}_cifs`` (the CIFS layers: output 0 the masked
    features, output 1 the probe logits).

    Example:
      >>> model = cifs_resnet((28, 28, 1), 10, depth=10)
      >>> [layer.name for layer in tfrobust.layers.cifs.cifs_layers(model)]
      ['stage3_block1_cifs', 'stage4_block1_cifs']

    Reference: Yan, thesis §4.4.1 and App. 4.6.4 (Yan et al., ICML 2021); layout of the authors'
    ``ResNet10_3_4`` / ``ResNet18_L4``.
    """
    if depth is None and (stage_blocks is None or stage_widths is None):
        depth = 18
    if depth is not None:
        check_choice("depth", depth, sorted(DEPTHS))
        preset_blocks, preset_widths = DEPTHS[depth]
        stage_blocks = preset_blocks if stage_blocks is None else stage_blocks
        stage_widths = preset_widths if stage_widths is None else stage_widths
    blocks = components.check_int_list("stage_blocks", stage_blocks)
    widths = components.check_int_list("stage_widths", stage_widths)
    if len(blocks) != len(widths):
        raise TfrobustError(f"stage_blocks and stage_widths must have the same number of entries, "
                            f"got {list(blocks)} and {list(widths)}")
    names = [f"stage{s}_block{b}" for s, count in enumerate(blocks, 1) for b in range(1, count + 1)]
    check_int("cifs_blocks", cifs_blocks, 0, len(names))  # at most the number of blocks
    probe_list = [probes] * cifs_blocks if isinstance(probes, str) else list(probes)
    if cifs_blocks and len(probe_list) != cifs_blocks:
        raise TfrobustError(f"probes must name one probe per CIFS block ({cifs_blocks}), got {probes!r}")
    for probe in probe_list[:cifs_blocks]:
        check_choice("probe", probe, PROBES)
    check_choice("imgf", imgf, IMGFS)
    check_choice("mask_path", mask_path, MASK_PATHS)
    check_beta(beta, allow_inf=False)
    components.check_positive_int("num_classes", num_classes)
    targets = names[len(names) - cifs_blocks:] if cifs_blocks else []
    block_options = dict(dropout=dropout, cifs_probes=dict(zip(targets, probe_list)), num_classes=num_classes,
                         top_k=top_k, imgf=imgf, alpha=alpha, temperature=temperature, mask_scale=mask_scale,
                         mask_path=mask_path, probe_loss_weight=beta / cifs_blocks if cifs_blocks else 0.0)
    if cifs_blocks:
        # Checks top_k, alpha, temperature and mask_scale before anything is built.
        CIFS(num_classes, top_k=top_k, imgf=imgf, alpha=alpha, temperature=temperature, mask_scale=mask_scale)
    base = f"resnet{depth}" if depth is not None else "resnet"
    return resnet.build_resnet_body(
        input_shape, num_classes, stage_blocks=blocks, stage_widths=widths, stem_width=stem_width,
        strides=strides, width=width, block="cifs", block_options=block_options, norm=norm, conv=conv,
        pooling=pooling, model_name=f"cifs_{base}" if cifs_blocks else base,
        stem_options=dict(mean=mean, std=std, upsample=upsample, upsample_interpolation=upsample_interpolation))


registry.register("cifs_resnet", cifs_resnet)
registry.register("cifs_resnet10", functools.partial(cifs_resnet, depth=10))
registry.register("cifs_resnet18", functools.partial(cifs_resnet, depth=18))
