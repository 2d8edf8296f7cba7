"""``gateway dossier`` as a subprocess against a temporary configuration and store."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.console_env import BSN_A, BSN_B, example, make_env


def test_dossier_by_client_and_by_toewijzing(tmp_path: Path) -> None:
    """The chain is oldest first, links the JW302 to its JW301, lists the allocation's
    ToewijzingNummers, and never prints a BSN."""
    env = next(make_env(tmp_path, "sqlite"))
    toewijzing, retour, declaratie = env.submit(
        ("diemen", example("JW301.xml", bsns=(BSN_A,))),
        ("provider-b", example("JW302.xml")),
        ("provider-a", example("JW323.xml", bsns=(BSN_A, BSN_B))),
    )
    store = env.store()
    key = store.pseudonyms.client_key(BSN_A)
    store.close()
    by_bsn, by_key, by_number, by_gemeente, table, other = env.run_all(
        ("dossier", "--client", BSN_A, "--json"),
        ("dossier", "--client", key, "--json"),
        ("dossier", "--toewijzing", "300201", "--json"),
        ("dossier", "--toewijzing", "300201", "--gemeente", "0384", "--json"),
        ("dossier", "--client", BSN_A),
        ("dossier", "--toewijzing", "999"),
    )
    for done in (by_bsn, by_key, by_number, by_gemeente, table, other):
        assert done.returncode == 0, done.stderr
        assert BSN_A not in done.stdout + done.stderr
        assert BSN_B not in done.stdout + done.stderr

    client = json.loads(by_bsn.stdout)
    assert client["client"] == "******006"
    ids = [m["id"] for m in client["messages"]]
    assert ids == sorted(ids) and toewijzing.id in ids and declaratie.id in ids
    first = next(m for m in client["messages"] if m["id"] == toewijzing.id)
    assert first["message_type"] == "JW301"
    assert (first["sender"], first["recipient"]) == ("diemen", "provider-b")
    assert first["retour"]["id"] == retour.id
    assert first["toewijzingen"] == ["300201", "300202"]
    assert [m["id"] for m in json.loads(by_key.stdout)["messages"]] == ids

    numbered = json.loads(by_number.stdout)
    assert toewijzing.id in [m["id"] for m in numbered["messages"]]
    assert declaratie.id not in [m["id"] for m in numbered["messages"]]
    assert json.loads(by_gemeente.stdout)["messages"] == numbered["messages"]

    assert toewijzing.id in table.stdout and "JW301" in table.stdout
    assert "******006" in table.stdout and retour.id in table.stdout
    assert "no messages for toewijzing 999" in other.stdout


def test_dossier_refuses_bad_input(tmp_path: Path) -> None:
    """A client that is neither a BSN nor a key, and an unknown gemeente, are clear errors."""
    env = next(make_env(tmp_path, "sqlite"))
    bad_client, bad_gemeente, both = env.run_all(
        ("dossier", "--client", "12345"),
        ("dossier", "--toewijzing", "300201", "--gemeente", "9999"),
        ("dossier", "--toewijzing", "1", "--client", BSN_A),
    )
    assert bad_client.returncode != 0 and "--client takes a BSN" in bad_client.stderr
    assert bad_gemeente.returncode != 0 and "no party with gemeentecode" in bad_gemeente.stderr
    assert both.returncode != 0
    assert BSN_A not in both.stdout
