"""Published weights: upstream and DLM checkpoint layouts load, mismatches are named; checkpoints
trained elsewhere are adopted only by their own run."""

import hashlib

import pytest
import torch

from spbench.io import CorruptFileError
from spbench.models import create_model
from spbench.train import checkpoint_header, load_checkpoint
from spbench.weights import (
    WeightsMismatchError,
    adopt_checkpoint,
    extract_state_dict,
    import_weights,
)

LAP = {
    "use_lap": True,
    "use_msd": True,
    "use_wr": True,
    "lambda_lap": 360.0,
    "msd_mode": "per_image",
}


def _reference(method="scn"):
    torch.manual_seed(1)
    return create_model(method).state_dict()


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}},
        lambda sd: {"state_dict": {f"model.{k}": v for k, v in sd.items()}, "lr": 1e-4},
        lambda sd: sd,
    ],
    ids=["upstream-tar", "dlm-lightning", "plain"],
)
def test_checkpoint_layouts_load_exactly(tmp_path, wrap):
    reference = _reference()
    torch.save(wrap(reference), tmp_path / "published.ckpt")
    out = import_weights(
        str(tmp_path / "published.ckpt"),
        tmp_path / "run/main.pt",
        method="scn",
        variant="pub_lap",
        loss_config=LAP,
    )
    ckpt = load_checkpoint(out)
    assert ckpt["weights"] == "published weights published.ckpt"
    assert ckpt["variant"] == "pub_lap" and ckpt["step"] == 0
    # The header every spbench checkpoint starts with (provenance reads "finished").
    assert set(checkpoint_header()) <= set(ckpt) and ckpt["finished"][:4].isdigit()
    for key, value in reference.items():
        assert torch.equal(ckpt["model"][key], value), key


def test_only_the_leading_prefix_is_stripped():
    state = extract_state_dict({"state_dict": {"model.local_model.x": 1, "module.a.model.b": 2}})
    assert set(state) == {"local_model.x", "a.model.b"}


def test_cds_inference_checkpoint_may_lack_training_only_modules(tmp_path):
    reference = {
        k: v
        for k, v in _reference("cds").items()
        if not k.startswith(("encoder_assit.", "mi_estimator."))
    }
    torch.save({"state_dict": reference}, tmp_path / "cds.tar")
    import_weights(
        str(tmp_path / "cds.tar"),
        tmp_path / "cds.pt",
        method="cds",
        variant="pub_base",
        loss_config=LAP,
    )


def test_missing_and_misshapen_weights_are_named(tmp_path):
    reference = _reference()
    missing = dict(reference)
    missing.pop("conv0a.0.weight")
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(WeightsMismatchError, match=r"conv0a\.0\.weight"):
        import_weights(
            str(tmp_path / "missing.pt"),
            tmp_path / "a.pt",
            method="scn",
            variant="pub_lap",
            loss_config=LAP,
        )
    bad = dict(reference)
    bad["pred_mask0.weight"] = torch.zeros(9, 16, 1, 1)
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(WeightsMismatchError, match=r"pred_mask0\.weight"):
        import_weights(
            str(tmp_path / "bad.pt"),
            tmp_path / "b.pt",
            method="scn",
            variant="pub_lap",
            loss_config=LAP,
        )
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "b.pt").exists()


def test_sha256_and_unreadable_files(tmp_path):
    torch.save(_reference(), tmp_path / "w.pt")
    good = hashlib.sha256((tmp_path / "w.pt").read_bytes()).hexdigest()
    import_weights(
        str(tmp_path / "w.pt"),
        tmp_path / "ok.pt",
        method="scn",
        variant="pub_lap",
        loss_config=LAP,
        sha256=good,
    )
    with pytest.raises(CorruptFileError, match="sha256"):
        import_weights(
            str(tmp_path / "w.pt"),
            tmp_path / "x.pt",
            method="scn",
            variant="pub_lap",
            loss_config=LAP,
            sha256="0" * 64,
        )
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptFileError, match=r"junk\.pt"):
        import_weights(
            str(tmp_path / "junk.pt"),
            tmp_path / "y.pt",
            method="scn",
            variant="pub_lap",
            loss_config=LAP,
        )
    with pytest.raises(FileNotFoundError, match=r"config\.published"):
        import_weights(
            str(tmp_path / "nothing.pt"),
            tmp_path / "z.pt",
            method="scn",
            variant="pub_lap",
            loss_config=LAP,
        )


def _trained_elsewhere(tmp_path, settings):
    path = tmp_path / "scn_lap_seed1.pt"
    payload = {
        **checkpoint_header(),
        "method": "scn",
        "variant": "lap",
        "seed": 1,
        "stage": "main",
        "settings": settings,
        "device_name": "NVIDIA H200",
        "step": 4000,
        "model": _reference(),
    }
    torch.save(payload, path)
    return path


def test_adopt_checkpoint_copies_its_own_run(tmp_path):
    settings = {"train": {"steps": 4000, "fast": {"tf32": True}}, "variant": {"name": "lap"}}
    source = _trained_elsewhere(tmp_path, settings)
    out = adopt_checkpoint(
        source,
        tmp_path / "run/main.pt",
        method="scn",
        variant="lap",
        seed=1,
        stage="main",
        settings=settings,
    )
    assert out.read_bytes() == source.read_bytes()  # provenance kept as trained
    assert load_checkpoint(out)["device_name"] == "NVIDIA H200"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 0}, "trained as seed 1, the run needs 0"),
        ({"variant": "base"}, "trained as variant 'lap', the run needs 'base'"),
        (
            {"settings": {"train": {"steps": 5000, "fast": {"tf32": True}}}},
            "trained with settings.train.steps = 4000, the profile says 5000",
        ),
    ],
)
def test_adopt_checkpoint_names_what_differs(tmp_path, change, message):
    settings = {"train": {"steps": 4000, "fast": {"tf32": True}}}
    source = _trained_elsewhere(tmp_path, settings)
    run = {"method": "scn", "variant": "lap", "seed": 1, "stage": "main", "settings": settings}
    with pytest.raises(WeightsMismatchError, match=message):
        adopt_checkpoint(source, tmp_path / "main.pt", **{**run, **change})
    assert not (tmp_path / "main.pt").exists()
