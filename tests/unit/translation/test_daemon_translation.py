"""The daemon's side of translation without a store: party generations in the configuration,
which messages are translated, and the rules that run on the translated message."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from gateway.config import load_config
from gateway.core.errors import ConfigError
from gateway.core.ledger import InMemoryLedger
from gateway.core.lists import ExternalLists
from gateway.core.mapping_tables import MappingTable
from gateway.core.report import Level
from gateway.core.route import Channel, GenerationStep, Party, PartyRegistry, PartyRole
from gateway.core.rules import RuleContext
from gateway.core.validate import validate
from gateway.mapping_files import load_mappings
from gateway.schemas import load_schema_set
from gateway.translator import Translator, generation_day
from tests.paths import OFFICIAL_XSD_DIR
from tests.unit.translation.builders import follow_up, jw301, products, set_text, write_folder

PARTIES = """
[[parties]]
id = "diemen"
role = "gemeente"
identity = "0384"
{diemen}
[[parties]]
id = "provider"
role = "aanbieder"
identity = "42420001"
{provider}
"""


def _config(tmp_path: Path, diemen: str = "", provider: str = "", mappings: str = "") -> Path:
    path = tmp_path / "config.toml"
    paths = f'[paths]\nmappings = "{mappings}"\n' if mappings else ""
    path.write_text(paths + PARTIES.format(diemen=diemen, provider=provider), encoding="utf-8")
    return path


def test_generation_steps_are_read_in_date_order(tmp_path: Path) -> None:
    steps = (
        'generation = [{generation = "profile-2018", from = 2018-01-01}, '
        '{generation = "legacy"}, {generation = "pxq-2023", from = 2023-01-01}]'
    )
    settings = load_config(_config(tmp_path, diemen=steps, provider='generation = "legacy"'), {})
    diemen, provider = settings.parties
    assert diemen.generations == (
        GenerationStep("legacy"),
        GenerationStep("profile-2018", dt.date(2018, 1, 1)),
        GenerationStep("pxq-2023", dt.date(2023, 1, 1)),
    )
    assert [diemen.generation_on(dt.date(y, 6, 1)) for y in (2017, 2018, 2024)] == [
        "legacy",
        "profile-2018",
        "pxq-2023",
    ]
    assert diemen.generation_on(dt.date(2018, 1, 1)) == "profile-2018"
    assert provider.generation_on(dt.date(1990, 1, 1)) == "legacy"
    assert settings.translates


def test_a_party_without_generation_takes_part_in_no_translation(tmp_path: Path) -> None:
    settings = load_config(_config(tmp_path), {})
    assert not settings.translates
    assert settings.parties[0].generation_on(dt.date(2026, 1, 1)) is None
    only_later = Party(
        "p",
        PartyRole.AANBIEDER,
        "1",
        settings.parties[0].channel,
        generations=(GenerationStep("new", dt.date(2020, 1, 1)),),
    )
    assert only_later.generation_on(dt.date(2019, 12, 31)) is None


def test_unknown_generation_names_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, provider='generation = "legacyy"'), {})
    message = str(caught.value)
    assert "parties[1] (id 'provider').generation: unknown generation 'legacyy'" in message
    assert "generations.toml" in message and "profile-2018" in message


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("[]", "at least one"),
        ('[{generation = "legacy"}, {generation = "pxq-2023"}]', "only one step"),
        (
            '[{generation = "legacy", from = 2020-01-01}, '
            '{generation = "pxq-2023", from = 2020-01-01}]',
            "same date",
        ),
        ('[{generation = "legacy", since = 2020-01-01}]', "unknown key"),
    ],
)
def test_malformed_generation_steps_are_refused(tmp_path: Path, value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_config(_config(tmp_path, diemen=f"generation = {value}"), {})


def test_missing_mapping_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(
            _config(tmp_path, provider='generation = "x"', mappings=str(tmp_path / "none")), {}
        )


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> MappingTable:
    return load_mappings(write_folder(tmp_path_factory.mktemp("mappings")))


def _registry(diemen: str | None, provider: str | None) -> PartyRegistry:
    def steps(name: str | None) -> tuple[GenerationStep, ...]:
        return () if name is None else (GenerationStep(name),)

    return PartyRegistry(
        [
            Party("diemen", PartyRole.GEMEENTE, "0384", Channel.FOLDER, generations=steps(diemen)),
            Party(
                "provider",
                PartyRole.AANBIEDER,
                "42420001",
                Channel.FOLDER,
                generations=steps(provider),
            ),
        ]
    )


def test_only_parties_on_different_generations_translate(table: MappingTable) -> None:
    schemas = load_schema_set([OFFICIAL_XSD_DIR])
    report = validate(jw301("0384", "1", "45", "45N03", dt.date(2026, 3, 1)), schemas)
    translator = Translator(table)
    today = dt.date(2026, 5, 1)
    for diemen, provider, expected in (
        ("new", "old", ("new", "old")),
        ("new", "new", None),
        ("new", None, None),
        (None, "old", None),
    ):
        registry = _registry(diemen, provider)
        sender = registry.get("diemen")
        assert sender is not None
        assert translator.generations(report, sender, registry, today, InMemoryLedger()) == expected


def _set_dagtekening(raw: bytes, day: dt.date) -> bytes:
    root = etree.fromstring(raw)
    set_text(root, "Header/BerichtIdentificatie/Dagtekening", day.isoformat())
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_a_running_allocation_keeps_the_generation_it_was_made_in(table: MappingTable) -> None:
    """Diemen moves to the new codes on the table's cut-over (2020-01-01), the provider stays
    old: a start reported after it for an allocation of 2019 speaks old on both sides (not
    translated, its code checked against the old list); one for an allocation of 2020 is
    translated under its pair."""
    schemas = load_schema_set([OFFICIAL_XSD_DIR])
    cutover, reported = dt.date(2020, 1, 1), dt.date(2020, 1, 5)
    gemeente = Party(
        "diemen",
        PartyRole.GEMEENTE,
        "0384",
        Channel.FOLDER,
        generations=(GenerationStep("old"), GenerationStep("new", cutover)),
    )
    provider = Party(
        "provider",
        PartyRole.AANBIEDER,
        "65656055",
        Channel.FOLDER,
        generations=(GenerationStep("old"),),
    )
    registry = PartyRegistry([gemeente, provider])
    translator, ledger = Translator(table), InMemoryLedger()
    made = translator.translate(
        jw301("0384", "78", "45", "45N03", dt.date(2020, 1, 2)), "new", "old", ledger
    )[0]
    ledger.record_all(made.entries)
    for nummer, code, allocated, expected in (
        ("77", "45A03", dt.date(2019, 11, 1), None),
        ("78", "45A03", dt.date(2020, 1, 2), ("old", "new")),
    ):
        start = _set_dagtekening(
            follow_up("JW305", "0384", nummer, "45", code, allocated), reported
        )
        report = validate(start, schemas)
        assert report.document is not None
        assert translator.generations(report, provider, registry, reported, ledger) == expected
        day = generation_day(report.document, reported, ledger)
        assert gemeente.generation_on(day) == ("old" if expected is None else "new"), nummer
    # A 2019 allocation the gemeente re-sent in the new codes (RedenWijziging 10) has a pair:
    # it travels under the pair from then on.
    resent = translator.translate(
        jw301("0384", "77", "45", "45N03", dt.date(2019, 11, 1), reden="10"), "new", "old", ledger
    )[0]
    ledger.record_all(resent.entries)
    start = _set_dagtekening(
        follow_up("JW305", "0384", "77", "45", "45A03", dt.date(2019, 11, 1)), reported
    )
    report = validate(start, schemas)
    assert translator.generations(report, provider, registry, reported, ledger) == ("old", "new")


def test_rules_after_translation_check_the_receivers_code_list(table: MappingTable) -> None:
    """TR381 (S329) on a translated message uses the receiver's generation, not JZ21."""
    schemas = load_schema_set([OFFICIAL_XSD_DIR])
    national = table.generations["old"].codes  # the "national" list knows the old codes only
    context = RuleContext(today=dt.date(2026, 5, 1), lists=ExternalLists(product_codes=national))
    registry = _registry("new", "old")
    provider = registry.get("provider")
    assert provider is not None
    ledger = InMemoryLedger()
    start = follow_up("JW305", "0384", "77", "45", "45A03", dt.date(2026, 3, 1))
    original = validate(start, schemas, context)
    assert original.level is Level.OK  # the old code is on the national list
    first = Translator(table).translate(
        jw301("0384", "77", "45", "45N03", dt.date(2026, 3, 1)), "new", "old", ledger
    )[0]
    ledger.record_all(first.entries)

    report, record = Translator(table).apply(
        original,
        provider,
        registry,
        raw=start,
        today=dt.date(2026, 5, 1),
        context=context,
        schemas=schemas,
        ledger=ledger,
        max_bytes=10_000_000,
    )
    assert record is not None and record.translated is not None
    assert products(record.translated) == [("45", "45N03")]
    assert "TR381" not in report.rule_codes
    # The same message checked against the national list would have earned S329.
    assert "TR381" in validate(record.translated, schemas, context).rule_codes
