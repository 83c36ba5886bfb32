"""AutoAttack (Croce & Hein, ICML 2020), standard version, and a documented fast variant for CPUs.

The standard version runs APGD-CE → APGD-T → FAB-T → Square on the points each earlier attack left
standing and keeps, per point, the first adversarial example found (so the result is the per-point worst
case over the four attacks). Budgets follow the reference's ``version='standard'``
(``../shared/AUTOATTACK-SPEC.md`` §2.2):

| attack  | standard                                        | fast (CPU smoke runs)                     |
|---------|-------------------------------------------------|-------------------------------------------|
| APGD-CE | 100 iterations, 1 restart, ρ = 0.75             | 25 iterations                             |
| APGD-T  | 100 iterations, 9 target classes, 1 restart     | 25 iterations, 3 target classes           |
| FAB-T   | 100 iterations, 9 target classes, 1 restart     | skipped                                   |
| Square  | 5,000 queries, p_init = 0.8, margin loss        | 1,000 queries                             |

Versions: "standard" (above), "rand" (the reference's version for randomised models: APGD-CE then
APGD-DLR, 100 iterations, 1 restart, each gradient the mean of 20 per-pass loss gradients through
``EOT(model_fn, 20, average="loss")``; predictions use single passes, as in the reference) and "fast".

Driver, as the reference's ``run_standard_evaluation`` (spec §2.3): a call gets *all* points (the
evaluation engine passes every standing point at once, ``batches_itself``); each component runs over
every point still standing, in chunks of ``batch_size``, so the survivors of a component are re-chunked
into full batches for the next (not left in the caller's chunks, where APGD-T, FAB-T and Square would
see ~100 survivors of 250 for their full sequential budgets). Every component starts from the clean
images; a returned point that is misclassified replaces the clean one.

Diagnostics (the reference's checks, spec §6, as warnings and in ``last_diagnostics``): on the first
``batch_size`` points, the randomness check (5 passes, L2-normalised logits, 1e-4; skipped for "rand")
and the probability check (rows in [0, 1] summing to 1); per APGD component, the points with an all-zero
gradient at the random start; at the end, ``check_square_sr`` (Square lowered the accuracy left by the
white-box components by more than 0.2 pt). ``last_report`` has the cumulative robust accuracy after
each component over all points of the call, aggregated across chunks.

Seeds: component i gets its own seed, folded from ``seed`` and i (``component_seed``), so the random
starts of APGD-CE and APGD-T (and Square's stream) are not the same stream. Chunk j of a component draws
that component's stream j (``set_stream``; call k of the AutoAttack: stream k·2²⁰ + j), so a chunk's result
does not depend on where or after what it runs: ``run_chunk`` is the unit a sharded evaluation sends to
its workers, and a ``journal`` records finished chunks for a resumed call to replay.

Departures from the reference: the attacks are TF-native re-implementations (see each attack's
docstring); the number of target classes is capped at ``num_classes − 1`` for datasets with fewer than
ten classes (the reference would fail); a seed is folded per component and per chunk instead of reset to
the same value for every chunk (the reference's ``seed=None`` uses the clock). The "fast" version is
*not* AutoAttack and must not be reported as such; it exists so CPU smoke runs finish in minutes.
"""

import time
import warnings

import numpy as np
import tensorflow as tf

from tfrobust.attacks import checks, losses
from tfrobust.attacks.apgd import APGD, APGDT
from tfrobust.attacks.base import Attack
from tfrobust.attacks.eot import EOT
from tfrobust.attacks.fab import FABT
from tfrobust.attacks.square import Square
from tfrobust.core.files import plain
from tfrobust.errors import TfrobustError, check_choice, check_int

VERSIONS = {
    "standard": [("apgd-ce", APGD, {"loss": "ce", "steps": 100, "restarts": 1}),
                 ("apgd-t", APGDT, {"steps": 100, "num_target_classes": 9, "restarts": 1}),
                 ("fab-t", FABT, {"steps": 100, "num_target_classes": 9, "restarts": 1}),
                 ("square", Square, {"queries": 5000})],
    "rand": [("apgd-ce", APGD, {"loss": "ce", "steps": 100, "restarts": 1}),
             ("apgd-dlr", APGD, {"loss": "dlr", "steps": 100, "restarts": 1})],
    "fast": [("apgd-ce", APGD, {"loss": "ce", "steps": 25, "restarts": 1}),
             ("apgd-t", APGDT, {"steps": 25, "num_target_classes": 3, "restarts": 1}),
             ("square", Square, {"queries": 1000})],
}
#: EOT passes per gradient in the "rand" version (the reference's ``eot_iter``).
RAND_EOT_SAMPLES = 20
#: Streams reserved per call for a component's chunks (``AutoAttack.set_stream``).
STREAMS_PER_CALL = 1 << 20


def component_seed(seed, index):
    """The seed of component ``index``: a deterministic 31-bit fold of (seed, index)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint32)[0] >> 1)


class AutoAttack(Attack):
    """``AutoAttack(norm="linf", eps=8/255, version="standard")(model_fn, x, y) -> x_adv``.

    A white-box ``Attack`` (its APGD and FAB members need the model's gradients; Square only queries it).

    Args:
      norm, eps, clip_min, clip_max, seed: the threat model (untargeted only, as in the reference).
      version: "standard", "rand" or "fast" (see the module docstring).
      batch_size: points per component call (the reference's ``bs``, 250), ≥ 1.

    After a call, ``last_report`` lists per component attack the number of points still robust after
    it (``robust``) and the cumulative robust accuracy of the call's points (``robust_accuracy``), its
    wall time and its forward/backward counts summed over chunks; ``last_counts`` sums the counts (plus
    the clean and re-evaluation forward passes); ``last_diagnostics`` holds the checks and the clean
    accuracy.

    ``progress`` (optional, keyword) is called after every chunk of every component as
    ``progress(component name, chunk number from 1, chunks of this component, points still robust)``, so a
    caller (the evaluation's progress bar) can report inside this one long call.
    """

    #: The evaluation engine passes every standing point in one call; this class batches them itself.
    batches_itself = True
    #: ``__call__`` takes a ``progress`` callback (see the class docstring).
    reports_progress = True
    #: ``__call__`` takes a ``journal`` and resumes from it (see ``__call__``).
    keeps_journal = True

    def __init__(self, *, norm="linf", eps=8 / 255, clip_min=0.0, clip_max=1.0, targeted=False, seed=0,
                 version="standard", batch_size=250):
        check_choice("version", version, VERSIONS)
        check_int("batch_size", batch_size, 1)
        if targeted:
            raise TfrobustError("AutoAttack is untargeted (its APGD-T and FAB-T pick their own targets)")
        super().__init__(norm=norm, eps=eps, clip_min=clip_min, clip_max=clip_max, seed=seed)
        self.version = version
        self.batch_size = int(batch_size)
        self._threat = {"norm": norm, "eps": eps, "clip_min": clip_min, "clip_max": clip_max}
        self.attacks = [(name, cls(**self._threat, seed=component_seed(seed, i), **kwargs))
                        for i, (name, cls, kwargs) in enumerate(VERSIONS[version])]
        self.last_report, self.last_counts, self.last_diagnostics = [], {"forward": 0, "backward": 0}, {}

    def set_stream(self, position):
        """Call ``position``'s streams: chunk j of every component draws stream
        ``position · STREAMS_PER_CALL + j`` of that component (``Attack.set_stream``)."""
        check_int("position", position, 0)
        self._calls = int(position)

    def run_chunk(self, model_fn, component, stream, x, y):
        """One unit of work: component ``component`` (index into ``attacks``) on one chunk, drawing its
        stream ``stream``; returns (candidate x_adv as NumPy, its counts, points with an all-zero gradient
        at the start). A sharded evaluation runs this on its workers, each with its own copy."""
        _, attack = self.attacks[component]
        attack.set_stream(stream)
        attack_fn = EOT(model_fn, RAND_EOT_SAMPLES, average="loss") if self.version == "rand" else model_fn
        candidate = np.asarray(attack(attack_fn, x, y), np.float32)
        # Under "rand" each call of the EOT wrapper is RAND_EOT_SAMPLES passes of the model.
        scale = RAND_EOT_SAMPLES if self.version == "rand" else 1
        counts = {key: int(value) * scale for key, value in attack.last_counts.items()}
        return candidate, counts, int(getattr(attack, "last_zero_gradients", 0))

    def __call__(self, model_fn, x, y, *, progress=None, journal=None, map_chunks=None):
        """Returns ``x_adv`` (see the class docstring).

        Args:
          model_fn, x, y: as ``Attack.__call__``.
          progress: optional ``progress(component, chunk, chunks, standing)`` callback.
          journal: optional ``tfrobust.core.journal.Journal``: every finished chunk is recorded (the points
            it broke and their adversarial examples, counts, time); a call given a journal that already
            holds records replays them and continues after the last, returning exactly what an
            uninterrupted call returns. The records must come from a call with the same inputs and
            configuration (a record of another component or chunk raises a ``TfrobustError``).
          map_chunks: optional ``map_chunks(jobs) -> iterable of run_chunk results``, in the order of
            ``jobs`` (each job a (component, stream, x, y) tuple for ``run_chunk``); default: run them here,
            one after the other. A sharded evaluation spreads a component's chunks over its workers.
        """
        x, y = self.validate(model_fn, x, y)
        x_clean = x.numpy()
        x_adv = x_clean.copy()
        labels = y.numpy()
        total = max(len(labels), 1)
        if map_chunks is None:
            map_chunks = lambda jobs: (self.run_chunk(model_fn, *job) for job in jobs)
        records = iter(journal.records() if journal is not None else [])
        start_record = next(records, None)
        if start_record is None:
            diagnostics = self._start_checks(model_fn, x_clean[:self.batch_size], labels[:self.batch_size])
            robust = self._predict(model_fn, x_adv) == labels
            if journal is not None:
                journal.append({"diagnostics": plain(diagnostics), "points": len(labels),
                                "batch_size": self.batch_size, "components": [name for name, _ in self.attacks]},
                               robust=robust)
        else:
            meta, arrays = start_record
            if meta.get("points") != len(labels):
                raise TfrobustError(f"the saved AutoAttack state is for {meta.get('points')} points, "
                                    f"this call has {len(labels)}")
            # Another batch size cuts other chunks under the same (component, chunk) numbers. A state saved
            # before the size was recorded is checked chunk by chunk below (its broken points must lie in the chunk).
            if meta.get("batch_size", self.batch_size) != self.batch_size:
                raise TfrobustError(f"the saved AutoAttack state is for batch_size {meta['batch_size']}, "
                                    f"this call has {self.batch_size}")
            diagnostics, robust = meta["diagnostics"], arrays["robust"].copy()
        self.last_diagnostics = diagnostics
        self.last_counts = {"forward": len(labels), "backward": 0}
        self.last_report = []
        self.last_diagnostics["clean_accuracy"] = robust.sum() / total
        for component, (name, attack) in enumerate(self.attacks):
            seconds, counts, zero_gradients = 0.0, {}, 0
            # Survivor batching: every point still standing, re-chunked into full batches.
            standing = np.flatnonzero(robust)
            chunks = [standing[i:i + self.batch_size] for i in range(0, len(standing), self.batch_size)]
            done = []
            for chunk in range(len(chunks)):
                record = next(records, None)
                if record is None:
                    break
                meta, arrays = record
                if (meta.get("component"), meta.get("chunk")) != (component, chunk):
                    raise TfrobustError(f"the saved AutoAttack state does not match this call (record of "
                                        f"component {meta.get('component')} chunk {meta.get('chunk')}, "
                                        f"expected {component} chunk {chunk})")
                done.append((meta, arrays))
            jobs = [(component, self._calls * STREAMS_PER_CALL + chunk, x_clean[index], labels[index])
                    for chunk, index in enumerate(chunks) if chunk >= len(done)]
            results = iter(map_chunks(jobs))
            for chunk, index in enumerate(chunks):
                if chunk < len(done):
                    meta, arrays = done[chunk]
                    broken_index, x_broken = arrays["broken"], arrays["x_adv"]
                    if not np.isin(broken_index, index).all():  # e.g. a state from before the size was recorded
                        raise TfrobustError(f"the saved AutoAttack state does not match this call (component "
                                            f"{component} chunk {chunk} broke points outside this call's chunk: "
                                            "saved with another batch_size?)")
                    chunk_counts, chunk_zero, chunk_seconds = meta["counts"], meta["zero_gradients"], meta["seconds"]
                else:
                    began = time.perf_counter()
                    candidate, chunk_counts, chunk_zero = next(results)
                    # A component's point counts only if it is a valid point of the threat model: an invalid
                    # one (non-finite, out of range or of the ball) would be restored to x by the evaluation,
                    # and accepting it here would hide the point from the later components.
                    valid, _ = checks.verify_points(attack, candidate, x_clean[index])
                    broken = (self._predict(model_fn, candidate) != labels[index]) & valid
                    chunk_counts = {**chunk_counts, "forward": chunk_counts.get("forward", 0) + len(index)}
                    broken_index, x_broken = index[broken], candidate[broken]
                    chunk_seconds = time.perf_counter() - began
                    if journal is not None:
                        journal.append({"component": component, "chunk": chunk, "counts": chunk_counts,
                                        "zero_gradients": chunk_zero, "seconds": chunk_seconds},
                                       broken=broken_index, x_adv=x_broken)
                x_adv[broken_index] = x_broken
                robust[broken_index] = False
                for key, value in chunk_counts.items():
                    counts[key] = counts.get(key, 0) + int(value)
                zero_gradients += int(chunk_zero)
                seconds += float(chunk_seconds)
                if progress is not None:
                    progress(name, chunk + 1, len(chunks), int(robust.sum()))
            for key in ("forward", "backward"):
                self.last_counts[key] += counts.get(key, 0)
            step = {"attack": name, "robust": int(robust.sum()), "robust_accuracy": robust.sum() / total,
                    "seconds": seconds, "counts": counts}
            if hasattr(attack, "last_zero_gradients"):
                step["zero_gradients"] = zero_gradients
                if zero_gradients:
                    warnings.warn(f"AutoAttack: {zero_gradients} point(s) had an all-zero gradient at the start "
                                  f"of {name}: gradient masking; try BPDA (tfrobust.attacks.bpda) or "
                                  "gradient-free attacks", stacklevel=2)
            self.last_report.append(step)
        square = checks.square_stronger([("clean", self.last_diagnostics["clean_accuracy"])] + [
            (s["attack"], s["robust_accuracy"]) for s in self.last_report])
        self.last_diagnostics["square_stronger"] = square
        if square and square["flagged"]:
            warnings.warn(f"AutoAttack: Square lowered the robust accuracy from {100 * square['before_square']:.2f}% "
                          f"to {100 * square['after_square']:.2f}% after the white-box attacks: their gradients "
                          "are likely masked (check_square_sr)", stacklevel=2)
        self.last_diagnostics["zero_gradients"] = {s["attack"]: s["zero_gradients"]
                                                   for s in self.last_report if "zero_gradients" in s}
        self._calls += 1
        return tf.constant(x_adv)

    def _start_checks(self, model_fn, x, y):
        diagnostics = {"randomness": None, "probability_outputs": False}
        if not len(x):
            return diagnostics
        if self.version != "rand":
            diagnostics["randomness"] = checks.randomness(model_fn, x, y)
            if diagnostics["randomness"]["flagged"]:
                warnings.warn("AutoAttack: the model's outputs change between identical calls "
                              f"({diagnostics['randomness']}); use version='rand' (EOT)", stacklevel=3)
        outputs = model_fn(tf.constant(x))
        diagnostics["probability_outputs"] = checks.looks_like_probabilities(outputs)
        if diagnostics["probability_outputs"]:
            warnings.warn("AutoAttack: the model's outputs look like probabilities (rows in [0, 1] summing to 1), "
                          "not logits; the attacks are weaker on them: pass the pre-softmax logits", stacklevel=3)
        return diagnostics

    def _predict(self, model_fn, x):
        return np.concatenate([np.argmax(losses.logits_of(model_fn(tf.constant(x[i:i + self.batch_size]))).numpy(),
                                         axis=-1) for i in range(0, len(x), self.batch_size)] or [np.zeros(0, int)])

    def _config(self):
        return {"version": self.version, "batch_size": self.batch_size,
                "attacks": [attack.get_config() for _, attack in self.attacks]}

