"""Which files each report artefact writes, and which settings reach it."""

from __future__ import annotations

import pytest

from spbench.config import ConfigError, load_config, report_settings
from spbench.report.artefacts import ARTEFACT_FILES, ARTEFACTS, artefact_paths


def test_first_file_of_each_artefact_is_at_the_top_of_its_folder(tmp_path):
    for artefact in ARTEFACTS:
        paths = list(artefact_paths(artefact, tmp_path).values())
        assert paths[0].parent == tmp_path, artefact  # the workflow's --out-dir
        assert len(set(paths)) == len(ARTEFACT_FILES[artefact]), artefact
    with pytest.raises(KeyError, match=r"unknown report artefact 'table4'.*table3"):
        artefact_paths("table4", tmp_path)


def test_each_artefact_gets_only_the_settings_that_can_change_it():
    config = load_config("config/smoke.yaml")
    tables = {"auc_range": config["report"]["auc_range"], "title": config["report"]["title"]}
    assert report_settings(config, "table2") == tables
    assert report_settings(config, "published") == tables
    assert report_settings(config, "table3") == {**tables, "method": config["ablation"]["method"]}
    assert report_settings(config, "sweep") == {**tables, "method": config["sweep"]["method"]}
    assert report_settings(config, "figures") == {"title": config["report"]["title"]}
    assert report_settings(config, "provenance") == {}
    with pytest.raises(ConfigError, match="table4"):
        report_settings(config, "table4")
