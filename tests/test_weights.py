"""Published weights: upstream and DLM checkpoint layouts load, mismatches are named; checkpoints
trained elsewhere are adopted only by their own run."""

import hashlib

import pytest
import torch

from spbench.checkpoint import checkpoint_header, load_checkpoint, save_checkpoint, state_dict_of
from spbench.errors import UserError
from spbench.io import CorruptFileError, read_json
from spbench.models import create_model
from spbench.session import refuse_dropped_adoption, refuse_missing_adoptions, run_file
from spbench.weights import WeightsMismatchError, adopt_checkpoint, import_weights

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
    state = state_dict_of({"state_dict": {"model.local_model.x": 1, "module.a.model.b": 2}})
    assert set(state) == {"local_model.x", "a.model.b"}


def test_cds_inference_checkpoint_may_lack_training_only_modules(tmp_path):
    reference = {
        k: v
        for k, v in _reference("cds").items()
        if not k.startswith(("encoder_assit.", "mi_estimator."))
    }
    torch.save({"state_dict": reference}, tmp_path / "cds.tar")
    out = import_weights(
        str(tmp_path / "cds.tar"),
        tmp_path / "cds.pt",
        method="cds",
        variant="pub_base",
        loss_config=LAP,
    )
    # The inference weights are copied exactly, and the checkpoint still holds a complete model
    # (the training-only modules come from the freshly built one; inference never uses them).
    model = load_checkpoint(out)["model"]
    for key, value in reference.items():
        assert torch.equal(model[key], value), key
    assert any(k.startswith("encoder_assit.") for k in model)


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


@pytest.fixture
def served(tmp_path):
    """Serve ``tmp_path/www`` over HTTP on localhost; yields the base URL."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

    (tmp_path / "www").mkdir()
    handler = functools.partial(Quiet, directory=str(tmp_path / "www"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_without_sha256_is_pinned_in_the_log_and_the_provenance(tmp_path, served, caplog):
    """A URL entry without sha256: the download's sha256 is logged with the advice to pin it
    and recorded in the checkpoint and the provenance table."""
    from spbench.report.provenance import write_provenance

    torch.save({"state_dict": _reference()}, tmp_path / "www/cds_lap.ckpt")
    digest = hashlib.sha256((tmp_path / "www/cds_lap.ckpt").read_bytes()).hexdigest()
    out = import_weights(
        f"{served}/cds_lap.ckpt",
        tmp_path / "run/main.pt",
        method="scn",
        variant="pub_lap",
        loss_config=LAP,
    )
    warning = next(r.getMessage() for r in caplog.records if "no sha256" in r.getMessage())
    assert digest in warning and f"`sha256: {digest}`" in warning and "pin" in warning
    assert load_checkpoint(out)["weights_sha256"] == digest
    md, csv = write_provenance([out], tmp_path / "report/provenance.md")
    assert f"published weights cds_lap.ckpt: sha256 `{digest}`" in md.read_text()
    assert f",{digest}," in csv.read_text()


#: The job settings of a run (spbench.jobs.train_job's shape, abridged).
JOB = {"steps": 4000, "lr_halve_at": None, "losses": {"use_lap": True, "lambda_lap": 1}}


def _trained_elsewhere(tmp_path, job=JOB):
    path = tmp_path / "scn_lap_seed1.pt"
    payload = {
        **checkpoint_header(),
        "method": "scn",
        "variant": "lap",
        "seed": 1,
        "stage": "main",
        "settings": job,
        # Where and how it ran: provenance, never compared with the run's.
        "runtime": {"device": "auto", "fast": {"tf32": True}, "log_every": 100},
        "device_name": "NVIDIA H200",
        "step": 4000,
        "model": _reference(),
    }
    save_checkpoint(path, payload)
    return path


def test_adopt_checkpoint_copies_its_own_run(tmp_path):
    """A checkpoint with the run's job settings is taken as trained, whatever its runtime."""
    source = _trained_elsewhere(tmp_path)
    out = adopt_checkpoint(
        source,
        tmp_path / "run/main.pt",
        method="scn",
        variant="lap",
        seed=1,
        stage="main",
        # The same job as the profile gives it: keys in another order, 1.0 for 1.
        job={"losses": {"lambda_lap": 1.0, "use_lap": True}, "lr_halve_at": None, "steps": 4000},
    )
    assert out.read_bytes() == source.read_bytes()  # provenance kept as trained
    ckpt = load_checkpoint(out)
    assert ckpt["device_name"] == "NVIDIA H200" and ckpt["runtime"]["fast"] == {"tf32": True}
    assert read_json(tmp_path / "run/main.adopted.json") == {"source": str(source.resolve())}


def test_a_run_without_trained_elsewhere_refuses_to_train_over_adopted_checkpoints(tmp_path):
    source = _trained_elsewhere(tmp_path)
    results = tmp_path / "results/run"
    out = results / "models/scn/lap/seed1/main.pt"
    run = {"method": "scn", "variant": "lap", "seed": 1, "stage": "main", "job": JOB}
    adopt_checkpoint(source, out, **run)
    refuse_dropped_adoption(results, str(source.parent))  # still adopting: nothing to say
    with pytest.raises(UserError) as err:
        refuse_dropped_adoption(results, "")
    for part in (f"1 checkpoints under {results / 'models'}", str(out), str(source.parent)):
        assert part in str(err.value)
    assert "--config trained_elsewhere=FOLDER" in str(err.value)
    out.unlink()  # deleted to train here: the stale mark alone does not stop the run
    refuse_dropped_adoption(results, "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 0}, "trained as seed 1, the run needs 0"),
        ({"variant": "base"}, "trained as variant 'lap', the run needs 'base'"),
        (
            {"job": {**JOB, "steps": 5000}},
            "trained with settings.steps = 4000, the profile says 5000",
        ),
        (
            {"job": {**JOB, "losses": {"use_lap": True, "lambda_lap": 2}}},
            "trained with settings.losses.lambda_lap = 1, the profile says 2",
        ),
    ],
)
def test_adopt_checkpoint_names_what_differs(tmp_path, change, message):
    source = _trained_elsewhere(tmp_path)
    run = {"method": "scn", "variant": "lap", "seed": 1, "stage": "main", "job": JOB}
    with pytest.raises(WeightsMismatchError, match=message):
        adopt_checkpoint(source, tmp_path / "main.pt", **{**run, **change})
    assert not (tmp_path / "main.pt").exists()


def test_a_missing_checkpoint_to_adopt_stops_the_run_rather_than_train_it(tmp_path):
    """Snakemake's rule order adopts only what exists: a mistyped trained_elsewhere or a missing
    file would train that run here, on the CPU. SLIC, with nothing to fit, is never adopted."""
    config = {"methods": ["scn", "slic"], "variants": ["base", "lap"], "seeds": [0, 1]}
    refuse_missing_adoptions({**config, "trained_elsewhere": ""})  # not adopting
    with pytest.raises(UserError, match="'null' is not a folder"):
        refuse_missing_adoptions({**config, "trained_elsewhere": "null"})  # --config ...=null
    folder = tmp_path / "returned"
    folder.mkdir()
    runs = [("scn", v, s) for v in ("base", "lap") for s in (0, 1)]
    for run in runs[1:]:
        (folder / run_file(*run)).write_bytes(b"")
    with pytest.raises(UserError, match=r"lacks 1 of the 4 checkpoints .*: scn_base_seed0\.pt;"):
        refuse_missing_adoptions({**config, "trained_elsewhere": str(folder)})
    (folder / run_file(*runs[0])).write_bytes(b"")
    refuse_missing_adoptions({**config, "trained_elsewhere": str(folder)})
