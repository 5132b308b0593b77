"""`inv deps.update`: what it says changed, and where bun fetches from (credentials masked)."""

from __future__ import annotations

from nixfly import depsupdate


def test_package_changes_and_registry_say_what_and_where(monkeypatch):
    assert depsupdate.package_changes({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "2.1", "d": "4"}) == [
        "b 2 → 2.1",
        "- c 3",
        "+ d 4",
    ]
    for name in depsupdate.REGISTRY_VARS:
        monkeypatch.delenv(name, raising=False)
    assert depsupdate.registry().startswith("https://registry.npmjs.org/ (bun's default")
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", "https://ci:s3cret@npm.example.com/repo/")
    assert depsupdate.registry() == "https://***@npm.example.com/repo/ ($NPM_CONFIG_REGISTRY)"
    monkeypatch.setenv("BUN_CONFIG_REGISTRY", "http://127.0.0.1:4873/")
    assert depsupdate.registry() == "http://127.0.0.1:4873/ ($BUN_CONFIG_REGISTRY)"
