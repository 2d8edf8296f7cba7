"""Read ``config.toml`` into frozen, validated settings (tomllib + pydantic).

Every problem becomes a :class:`ConfigError` that names the file and the key, so an operator
can fix it without reading code. Relative paths are relative to the configuration file's
folder, not to wherever the daemon was started. Secrets may come from ``GATEWAY_*`` variables.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretBytes,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.core.errors import ConfigError
from gateway.core.held_answers import DecisionPolicies, DecisionPolicy, PairPolicy
from gateway.core.lists import MissingTariff
from gateway.core.privacy import MIN_PSEUDONYM_KEY_BYTES
from gateway.core.retry import LeasePlan
from gateway.core.route import (
    Channel,
    GenerationStep,
    Party,
    PartyRegistry,
    PartyRole,
    ReleaseStep,
    token_digest,
)
from gateway.mapping_files import GENERATIONS_FILE
from gateway.shipped import SHIPPED_MAPPINGS, SHIPPED_SCHEMAS

DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024
MIB = 1024 * 1024
STORE_URL_ENV = "GATEWAY_STORE_URL"
PSEUDONYM_KEY_FILE = "pseudonym.key"

_CBS = re.compile(r"^\d{4}$")
_AGB = re.compile(r"^\d{8}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_PARTY_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_OIN = re.compile(r"^\d{20}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """``[server]``: where the HTTP API listens."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8480
    max_body_bytes: Annotated[int, Field(gt=0)] | None = None
    prepare_workers: Annotated[int, Field(ge=0, le=64)] = 0
    """Processes that validate, translate and check messages beside the event loop (0: threads
    of the daemon's own process, which shares one core with everything else)."""
    header_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    """From a request's first byte until its head (request line and headers) is complete."""
    idle_timeout_seconds: Annotated[float, Field(gt=0)] = 15.0
    """A connection without a complete request head this long after it opened or after its
    last response is closed (also bounds a head that never starts or trickles)."""
    body_min_bytes_per_second: Annotated[int, Field(gt=0)] = 16 * 1024
    """A body must keep up this average rate (after the grace below) or gets 408."""
    body_grace_seconds: Annotated[float, Field(ge=0)] = 10.0
    max_bodies_in_flight: Annotated[int, Field(ge=1)] = 32
    """Request bodies being received and stored at once; more get 503 with Retry-After."""
    max_body_bytes_in_flight: Annotated[int, Field(gt=0)] = 128 * MIB
    """Their total declared size (a body without Content-Length counts as the body limit)."""
    metrics_token_sha256: str | None = None
    metrics_token_env: str | None = None
    """The bearer token /metrics asks for (its SHA-256, or a GATEWAY_* variable holding it);
    without one /metrics answers 404."""

    @model_validator(mode="after")
    def _metrics_token(self) -> ServerSettings:
        _check_token_keys(self.metrics_token_sha256, self.metrics_token_env, "metrics_")
        return self


class ChainSettings(_Section):
    """``[chain]``: the StUF-GGk SOAP endpoint (OntvangAsynchroon) behind mutual TLS.

    Off by default. When on, ``certificate``, ``private_key`` and ``client_ca`` are required
    (PEM files, relative to the configuration file); a client must present a certificate from
    ``client_ca`` whose subject serialNumber (the OIN) a party's ``chain_oins`` allows.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8443
    certificate: Path | None = None
    private_key: Path | None = None
    client_ca: Path | None = None
    organisatie: Annotated[str, Field(min_length=1, max_length=200)] = "BVO"
    """Our ``zender/organisatie`` in the Bv03 and Fo03 answers."""
    applicatie: Annotated[str, Field(min_length=3, max_length=50)] = "ijw-gateway"
    """Our ``zender/applicatie``."""
    ggk_url: str | None = None
    """The GGk's OntvangAsynchroon (https) where parties with channel ``ggk`` are reached."""
    client_certificate: Path | None = None
    """What the gateway presents to the GGk (default: ``certificate``)."""
    client_private_key: Path | None = None
    """Its key (default: ``private_key``)."""
    ggk_ca: Path | None = None
    """The CAs the GGk's server certificate must chain to (default: ``client_ca``)."""

    @model_validator(mode="after")
    def _tls_files(self) -> ChainSettings:
        if self.enabled and None in (self.certificate, self.private_key, self.client_ca):
            raise ValueError("enabled: certificate, private_key and client_ca are required")
        if self.ggk_url is not None and not self.ggk_url.startswith("https://"):
            raise ValueError("ggk_url must start with https:// (the chain is mutual TLS)")
        return self

    @property
    def outbound_tls(self) -> tuple[Path, Path, Path] | None:
        """Client certificate, key and trusted CAs for sending to the GGk (None: incomplete)."""
        files = (
            self.client_certificate or self.certificate,
            self.client_private_key or self.private_key,
            self.ggk_ca or self.client_ca,
        )
        certificate, key, ca = files
        if certificate is None or key is None or ca is None:
            return None
        return certificate, key, ca


class StoreSettings(_Section):
    """``[store]``: the database URL (SQLite file by default, or PostgreSQL)."""

    url: str | None = None


class PathSettings(_Section):
    """``[paths]``: folders, relative to the configuration file."""

    inbox: Path = Path("inbox")
    outbox: Path = Path("outbox")
    schemas: tuple[Path, ...] | None = None
    """``None`` (left out): the iJw 3.2 and 2.3 schemas shipped with the gateway."""
    data: Path = Path("data")
    mappings: Path | None = None
    """``None`` (left out): the mapping folder shipped with the gateway."""


class ListSettings(_Section):
    """``[lists]``: external lists for the level-E rules, relative to the configuration file.

    ``missing_tariff``: what TR418 does with a claim line no contract row prices (``reject``
    with 0611, or ``warn``: accept and list it in ``gateway contracts coverage``).
    """

    contracts: Path | None = None
    missing_tariff: MissingTariff = MissingTariff.WARN


class LimitSettings(_Section):
    """``[limits]``: size limits on incoming messages."""

    max_message_bytes: Annotated[int, Field(gt=0)] = DEFAULT_MAX_MESSAGE_BYTES
    party_bytes_per_window: Annotated[int, Field(ge=0)] = 512 * MIB
    """Bytes one party may have stored per window (0: no cap); beyond it intake answers 429."""
    party_window_hours: Annotated[float, Field(gt=0, le=24 * 31)] = 24.0
    """The quota window; windows are aligned to the epoch (24 h: UTC days)."""
    min_free_disk_bytes: Annotated[int, Field(ge=0)] = 1024 * MIB
    """Intake answers 503 rather than leave less free space than this in the data folder."""


class RetrySettings(_Section):
    """``[retry]``: capped exponential backoff with jitter, then dead."""

    base_seconds: Annotated[float, Field(gt=0)] = 30.0
    cap_seconds: Annotated[float, Field(gt=0)] = 3600.0
    max_attempts: Annotated[int, Field(ge=1)] = 12
    max_age_hours: Annotated[float, Field(gt=0)] = 72.0

    @model_validator(mode="after")
    def _cap_above_base(self) -> RetrySettings:
        if self.cap_seconds < self.base_seconds:
            raise ValueError("cap_seconds must not be smaller than base_seconds")
        return self


class DeliverySettings(_Section):
    """``[delivery]``: how often and how much the delivery pass does.

    ``max_lanes`` parties are delivered side by side; a pass waits ``pass_wait_seconds`` for
    the lanes it started (below ``interval_seconds``, so passes do not queue up). The lease
    must cover one HTTP push with its whole timeout plus the time to record its outcome.
    """

    interval_seconds: Annotated[float, Field(gt=0)] = 2.0
    batch_size: Annotated[int, Field(ge=1)] = 50
    lease_seconds: Annotated[float, Field(gt=0)] = 120.0
    http_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    inbox_poll_seconds: Annotated[float, Field(gt=0)] = 1.0
    max_lanes: Annotated[int, Field(ge=1, le=1000)] = 16
    pass_wait_seconds: Annotated[float | None, Field(ge=0)] = None
    """``None`` (left out): 1 s, or half of ``interval_seconds`` if that is shorter."""

    @property
    def pass_wait(self) -> float:
        """The pass wait in effect."""
        if self.pass_wait_seconds is not None:
            return self.pass_wait_seconds
        return min(1.0, self.interval_seconds / 2)

    @model_validator(mode="after")
    def _consistent(self) -> DeliverySettings:
        if self.pass_wait >= self.interval_seconds:
            raise ValueError("pass_wait_seconds must be smaller than interval_seconds")
        # The same check the delivery lanes rely on (claims sized to fit the lease).
        LeasePlan(self.lease_seconds, self.http_timeout_seconds, self.batch_size)
        return self


class RetentionSettings(_Section):
    """``[retention]``: how long payloads of finished messages are kept (0 = forever).

    Only payloads go; metadata, history, findings and the audit trail stay. Queued, held,
    sending and dead messages are never touched whatever their age.
    """

    delivered_days: Annotated[int, Field(ge=0)] = 90
    rejected_days: Annotated[int, Field(ge=0)] = 30
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    interval_hours: Annotated[float, Field(gt=0)] = 24.0
    reclaim_space: bool = True


class PrivacySettings(_Section):
    """``[privacy]``: the secret behind client keys (HMAC-SHA256 of a BSN).

    ``pseudonym_key_env`` names an environment variable holding the key as hex (at least 16
    bytes); otherwise ``pseudonym_key_file`` (relative to the configuration file; default
    ``pseudonym.key`` in the data folder) holds it, created with 32 random bytes, mode 0600,
    on first start.
    """

    pseudonym_key_env: str | None = None
    pseudonym_key_file: Path | None = None


class RuleSettings(_Section):
    """``[rules]``: what the daemon checks beyond the message itself.

    ``dossier`` runs the cross-message (B) and external-list (E) rules on messages the
    gateway answers for, against the dossier register; ``product_codes`` names the code lists
    (``# list:`` names in the mapping folder's ``codes/``, comma-separated; their union) TR381
    checks against, "" for none.
    """

    dossier: bool = True
    product_codes: str = "JZ21"


class PairPolicySettings(_Section):
    """One ``[translation.pairs."FROM->TO"]`` table: the policy of one generation pair."""

    policy: DecisionPolicy = DecisionPolicy.WAIT
    decision_wait_working_days_before_deadline: Annotated[int, Field(ge=0, le=9)] | None = None


class TranslationSettings(_Section):
    """``[translation]``: what happens to a message held for a mapping decision when the BVO
    answers for its recipient (docs/translation.md, "When no decision comes").

    ``decision_policy``: ``wait`` for a decision until
    ``decision_wait_working_days_before_deadline`` working days before the original's retour
    deadline, then answer with the S329 retour; ``answer``: answer at once. ``pairs`` sets
    either per generation pair, keyed ``"FROM->TO"``.
    """

    decision_policy: DecisionPolicy = DecisionPolicy.WAIT
    decision_wait_working_days_before_deadline: Annotated[int, Field(ge=0, le=9)] = 1
    pairs: dict[str, PairPolicySettings] = Field(default_factory=dict)

    @field_validator("pairs")
    @classmethod
    def _pair_keys(cls, value: dict[str, PairPolicySettings]) -> dict[str, PairPolicySettings]:
        for key in value:
            source, arrow, target = key.partition("->")
            if not arrow or not source.strip() or not target.strip():
                raise ValueError(f'pair {key!r}: write it as "FROM->TO" (two generations)')
        return value

    def policies(self) -> DecisionPolicies:
        """The policies as the core reads them."""
        default = PairPolicy(self.decision_policy, self.decision_wait_working_days_before_deadline)
        pairs = {}
        for key, pair in self.pairs.items():
            source, _, target = key.partition("->")
            wait = pair.decision_wait_working_days_before_deadline
            pairs[(source.strip(), target.strip())] = PairPolicy(
                pair.policy, default.wait_working_days_before_deadline if wait is None else wait
            )
        return DecisionPolicies(default, pairs)


class GenerationStepSettings(_Section):
    """One step of a party's ``generation`` list: ``{generation = "...", from = 2018-01-01}``."""

    generation: str
    since: dt.date | None = Field(default=None, alias="from")


IjwRelease = Literal["2.3", "3.2"]


class ReleaseStepSettings(_Section):
    """One step of a party's ``release`` list: ``{release = "3.2", from = 2026-07-01}``."""

    release: IjwRelease
    since: dt.date | None = Field(default=None, alias="from")


class PartySettings(_Section):
    """One ``[[parties]]`` entry."""

    id: str
    role: PartyRole
    identity: str | None = None
    name: str | None = None
    token_sha256: str | None = None
    token_env: str | None = None
    channel: Channel = Channel.MAILBOX
    url: str | None = None
    readiness: Literal["ready", "paused"] = "ready"
    not_ready_until: dt.date | None = None
    answered_by: str | None = None
    generation: str | tuple[GenerationStepSettings, ...] | None = None
    chain_oins: tuple[str, ...] = ()
    release: IjwRelease | tuple[ReleaseStepSettings, ...] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PartySettings:
        if not _PARTY_ID.match(self.id):
            raise ValueError(
                f"id {self.id!r}: use lower-case letters, digits, '-' or '_' (it names folders)"
            )
        if self.role is PartyRole.GEMEENTE and not (self.identity and _CBS.match(self.identity)):
            raise ValueError(f"identity of gemeente {self.id!r} must be a 4-digit CBS code")
        if self.role is PartyRole.AANBIEDER and not (self.identity and _AGB.match(self.identity)):
            raise ValueError(f"identity of aanbieder {self.id!r} must be an 8-digit AGB code")
        _check_token_keys(self.token_sha256, self.token_env)
        if self.channel is Channel.HTTP and not self.url:
            raise ValueError(f"party {self.id!r} has channel 'http' but no url")
        if self.channel is not Channel.HTTP and self.url:
            raise ValueError(f"party {self.id!r}: url is only used with channel 'http'")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if isinstance(self.generation, tuple):
            _check_steps("generation", self.generation)
        if isinstance(self.release, tuple):
            _check_steps("release", self.release)
        for oin in self.chain_oins:
            if not _OIN.match(oin):
                raise ValueError(f"chain_oins: {oin!r} is not a 20-digit OIN")
        return self

    def generation_steps(self) -> tuple[GenerationStep, ...]:
        """The ``generation`` key as steps ordered by date (a plain name is one open step)."""
        if self.generation is None:
            return ()
        if isinstance(self.generation, str):
            return (GenerationStep(self.generation),)
        steps = sorted(self.generation, key=lambda s: s.since or dt.date.min)
        return tuple(GenerationStep(s.generation, s.since) for s in steps)

    def release_steps(self) -> tuple[ReleaseStep, ...]:
        """The ``release`` key as steps ordered by date (a plain release is one open step)."""
        if self.release is None:
            return ()
        if isinstance(self.release, str):
            return (ReleaseStep(self.release),)
        steps = sorted(self.release, key=lambda s: s.since or dt.date.min)
        return tuple(ReleaseStep(s.release, s.since) for s in steps)


def _check_token_keys(sha256: str | None, env: str | None, prefix: str = "") -> None:
    if sha256 is not None and env is not None:
        raise ValueError(f"give {prefix}token_sha256 or {prefix}token_env, not both")
    if sha256 is not None and not _HEX64.match(sha256):
        raise ValueError(f"{prefix}token_sha256 must be 64 hexadecimal characters (sha256sum)")
    if env is not None and not env.startswith("GATEWAY_"):
        raise ValueError(f"{prefix}token_env must name a GATEWAY_* environment variable")


def _check_steps(
    key: str, steps: tuple[GenerationStepSettings, ...] | tuple[ReleaseStepSettings, ...]
) -> None:
    """A dated list of ``generation`` or ``release`` steps: at most one open step, no date
    twice."""
    if not steps:
        raise ValueError(f"{key}: give a name or at least one {{{key}, from}} step")
    open_steps = [s for s in steps if s.since is None]
    if len(open_steps) > 1:
        raise ValueError(f"{key}: only one step may leave out 'from'")
    dates = [s.since for s in steps if s.since is not None]
    if len(dates) != len(set(dates)):
        raise ValueError(f"{key}: two steps start on the same date")


class _RawSettings(_Section):
    server: ServerSettings = ServerSettings()
    chain: ChainSettings = ChainSettings()
    store: StoreSettings = StoreSettings()
    paths: PathSettings = PathSettings()
    limits: LimitSettings = LimitSettings()
    retry: RetrySettings = RetrySettings()
    delivery: DeliverySettings = DeliverySettings()
    retention: RetentionSettings = RetentionSettings()
    rules: RuleSettings = RuleSettings()
    lists: ListSettings = ListSettings()
    privacy: PrivacySettings = PrivacySettings()
    translation: TranslationSettings = TranslationSettings()
    parties: tuple[PartySettings, ...] = ()


class Settings(_Section):
    """Everything the daemon needs, resolved: absolute paths, store URL, parties with hashes."""

    config_path: Path
    server: ServerSettings
    store_url: str
    inbox: Path
    outbox: Path
    schemas: tuple[Path, ...]
    data: Path
    limits: LimitSettings
    retry: RetrySettings
    delivery: DeliverySettings
    parties: tuple[Party, ...]
    retention: RetentionSettings = RetentionSettings()
    mappings: Path = SHIPPED_MAPPINGS
    rules: RuleSettings = RuleSettings()
    contracts: Path | None = None
    metrics_token_sha256: str | None = None
    """The digest of the bearer token /metrics asks for (None: /metrics is off)."""
    missing_tariff: MissingTariff = MissingTariff.WARN
    translation: TranslationSettings = TranslationSettings()
    pseudonym_key: SecretBytes | None = None
    """The pseudonym key from ``[privacy] pseudonym_key_env`` (None: from the key file)."""
    pseudonym_key_env: str | None = None
    """The environment variable ``pseudonym_key`` came from (for errors that name it)."""
    pseudonym_key_file: Path | None = None
    """Where the pseudonym key is kept when not in the environment (None: in the data folder)."""
    chain: ChainSettings = ChainSettings()
    """The StUF-GGk endpoint, with its TLS files resolved."""

    @property
    def pseudonym_key_path(self) -> Path:
        """The pseudonym key file: as configured, or ``pseudonym.key`` in the data folder."""
        return self.pseudonym_key_file or self.data / PSEUDONYM_KEY_FILE

    @property
    def translates(self) -> bool:
        """True when any party declares a code generation (the mapping tables are needed)."""
        return any(party.generations for party in self.parties)

    @property
    def max_body_bytes(self) -> int:
        """The HTTP body limit: the server's own, or the message size limit."""
        return self.server.max_body_bytes or self.limits.max_message_bytes

    def registry(self) -> PartyRegistry:
        """The party registry built from the configured parties."""
        return PartyRegistry(self.parties)


def _location(loc: tuple[int | str, ...], raw: Mapping[str, Any]) -> str:
    """``('parties', 1, 'role')`` → ``parties[1] (id 'x').role``."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            entry = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                label += f" (id {entry['id']!r})"
            parts.append(label)
            node = entry
        else:
            parts.append(("." if parts else "") + item)
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def _describe(exc: ValidationError, raw: Mapping[str, Any], path: Path) -> str:
    lines = [f"{path}: invalid configuration"]
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not str(p).startswith("function-after"))
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"  {_location(loc, raw)}: {message}")
    return "\n".join(lines)


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _toml_reason(exc: tomllib.TOMLDecodeError) -> str:
    """``:LINE:COLUMN: not valid TOML: reason``, to follow a file name (tomllib puts the
    position at the end of its message)."""
    message = str(exc)
    position = _TOML_POSITION.search(message)
    if position is None:
        return f": not valid TOML: {message}"
    line, column = position.groups()
    return f":{line}:{column}: not valid TOML: {message[: position.start()]}"


def _resolve(base: Path, value: Path) -> Path:
    return value if value.is_absolute() else (base / value).resolve()


def _sqlite_url(base: Path, url: str) -> str:
    """Make a relative ``sqlite:///file`` URL relative to the configuration folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/") or ":memory:" in url:
        return url
    return prefix + str((base / url.removeprefix(prefix)).resolve())


def _party(entry: PartySettings, environ: Mapping[str, str], path: Path, index: int) -> Party:
    token_hash = entry.token_sha256.lower() if entry.token_sha256 else None
    if entry.token_env is not None:
        token = environ.get(entry.token_env)
        if not token:
            raise ConfigError(
                f"{path}: parties[{index}] (id {entry.id!r}).token_env: "
                f"environment variable {entry.token_env} is not set"
            )
        token_hash = token_digest(token)
    return Party(
        id=entry.id,
        role=entry.role,
        identity=entry.identity,
        channel=entry.channel,
        url=entry.url,
        token_sha256=token_hash,
        paused=entry.readiness == "paused",
        not_ready_until=entry.not_ready_until,
        answered_by=entry.answered_by,
        name=entry.name,
        generations=entry.generation_steps(),
        chain_oins=entry.chain_oins,
        releases=entry.release_steps(),
    )


def _check_generations(parties: tuple[Party, ...], mappings: Path, path: Path) -> None:
    """Every generation a party names must be declared in the mapping folder's generations."""
    named = [(i, p, s.generation) for i, p in enumerate(parties) for s in p.generations]
    if not named:
        return
    gen_file = mappings / GENERATIONS_FILE
    try:
        declared = tomllib.loads(gen_file.read_text(encoding="utf-8")).get("generations", {})
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: paths.mappings: {gen_file} not found (parties name code generations)"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        # The message says it all; a chained cause would print it twice.
        raise ConfigError(f"{gen_file}{_toml_reason(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{gen_file}: cannot read generations: {exc}") from None
    known = sorted(declared) if isinstance(declared, dict) else []
    problems = [
        f"  parties[{index}] (id {party.id!r}).generation: unknown generation {name!r} "
        f"(declared in {gen_file}: {', '.join(known) or 'none'})"
        for index, party, name in named
        if name not in known
    ]
    if problems:
        raise ConfigError("\n".join([f"{path}: invalid configuration", *problems]))


def _check_registry(parties: tuple[Party, ...], path: Path) -> None:
    problems: list[str] = []
    seen_ids: set[str] = set()
    seen_identities: dict[str, str] = {}
    seen_tokens: dict[str, str] = {}
    by_id = {p.id: p for p in parties}
    for index, party in enumerate(parties):
        where = f"parties[{index}] (id {party.id!r})"
        if party.id in seen_ids:
            problems.append(f"{where}.id: duplicate party id")
        seen_ids.add(party.id)
        if party.identity is not None:
            if party.identity in seen_identities:
                problems.append(
                    f"{where}.identity: {party.identity} is also party "
                    f"{seen_identities[party.identity]!r}"
                )
            seen_identities[party.identity] = party.id
        if party.token_sha256 is not None:
            if party.token_sha256 in seen_tokens:
                problems.append(f"{where}: same token as party {seen_tokens[party.token_sha256]!r}")
            seen_tokens[party.token_sha256] = party.id
        if party.answered_by is not None:
            answering = by_id.get(party.answered_by)
            if answering is None:
                problems.append(f"{where}.answered_by: no party with id {party.answered_by!r}")
            elif answering.role is not PartyRole.BVO:
                problems.append(f"{where}.answered_by: {party.answered_by!r} is not a bvo")
    if problems:
        raise ConfigError("\n".join([f"{path}: invalid configuration", *problems]))


_CHAIN_FILES = (
    "certificate",
    "private_key",
    "client_ca",
    "client_certificate",
    "client_private_key",
    "ggk_ca",
)


def _check_ggk_channel(parties: tuple[Party, ...], chain: ChainSettings, path: Path) -> None:
    """Parties reached through the GGk need its URL and the client side's TLS files."""
    reached = [p.id for p in parties if p.channel is Channel.GGK]
    if not reached:
        return
    missing = []
    if chain.ggk_url is None:
        missing.append("ggk_url")
    if chain.outbound_tls is None:
        missing.append("client_certificate, client_private_key and ggk_ca (or their defaults)")
    if missing:
        raise ConfigError(
            f"{path}: chain: parties {', '.join(reached)} have channel 'ggk': "
            f"set {' and '.join(missing)}"
        )


def load_config(path: Path | str, environ: Mapping[str, str]) -> Settings:
    """Read and validate a configuration file; raise ``ConfigError`` naming file and key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}{_toml_reason(exc)}") from None
    try:
        parsed = _RawSettings.model_validate(raw)
    except ValidationError as exc:
        # The lines name file, key and reason; pydantic's own text would follow as the cause.
        raise ConfigError(_describe(exc, raw, path)) from None

    base = path.resolve().parent
    data = _resolve(base, parsed.paths.data)
    store_url = environ.get(STORE_URL_ENV) or parsed.store.url
    store_url = _sqlite_url(base, store_url) if store_url else f"sqlite:///{data / 'gateway.db'}"
    parties = tuple(
        _party(entry, environ, path, index) for index, entry in enumerate(parsed.parties)
    )
    _check_registry(parties, path)
    mappings = _resolve(base, parsed.paths.mappings) if parsed.paths.mappings else SHIPPED_MAPPINGS
    _check_generations(parties, mappings, path)
    _check_ggk_channel(parties, parsed.chain, path)
    body_limit = parsed.server.max_body_bytes or parsed.limits.max_message_bytes
    if parsed.server.max_body_bytes_in_flight < body_limit:
        raise ConfigError(
            f"{path}: server.max_body_bytes_in_flight: {parsed.server.max_body_bytes_in_flight} "
            f"is below the body limit {body_limit}, so the largest message could never be received"
        )
    return Settings(
        config_path=path.resolve(),
        server=parsed.server,
        store_url=store_url,
        inbox=_resolve(base, parsed.paths.inbox),
        outbox=_resolve(base, parsed.paths.outbox),
        schemas=(
            tuple(_resolve(base, folder) for folder in parsed.paths.schemas)
            if parsed.paths.schemas is not None
            else SHIPPED_SCHEMAS
        ),
        data=data,
        limits=parsed.limits,
        retry=parsed.retry,
        delivery=parsed.delivery,
        parties=parties,
        retention=parsed.retention,
        mappings=mappings,
        rules=parsed.rules,
        contracts=_resolve(base, parsed.lists.contracts) if parsed.lists.contracts else None,
        metrics_token_sha256=_metrics_digest(parsed.server, environ, path),
        missing_tariff=parsed.lists.missing_tariff,
        translation=parsed.translation,
        pseudonym_key=_pseudonym_key(parsed.privacy, environ, path),
        pseudonym_key_env=parsed.privacy.pseudonym_key_env,
        pseudonym_key_file=(
            _resolve(base, parsed.privacy.pseudonym_key_file)
            if parsed.privacy.pseudonym_key_file
            else None
        ),
        chain=parsed.chain.model_copy(
            update={
                name: _resolve(base, value)
                for name in _CHAIN_FILES
                if (value := getattr(parsed.chain, name)) is not None
            }
        ),
    )


def _metrics_digest(server: ServerSettings, environ: Mapping[str, str], path: Path) -> str | None:
    if server.metrics_token_env is None:
        return server.metrics_token_sha256.lower() if server.metrics_token_sha256 else None
    token = environ.get(server.metrics_token_env)
    if not token:
        raise ConfigError(
            f"{path}: server.metrics_token_env: "
            f"environment variable {server.metrics_token_env} is not set"
        )
    return token_digest(token)


def _pseudonym_key(
    privacy: PrivacySettings, environ: Mapping[str, str], path: Path
) -> SecretBytes | None:
    if privacy.pseudonym_key_env is None:
        return None
    name = privacy.pseudonym_key_env
    value = environ.get(name)
    if not value:
        raise ConfigError(
            f"{path}: privacy.pseudonym_key_env: environment variable {name} is not set"
        )
    try:
        key = bytes.fromhex(value.strip())
    except ValueError as exc:
        raise ConfigError(
            f"{path}: privacy.pseudonym_key_env: {name} does not hold the key as hex"
        ) from exc
    if len(key) < MIN_PSEUDONYM_KEY_BYTES:
        raise ConfigError(
            f"{path}: privacy.pseudonym_key_env: {name} holds fewer than "
            f"{MIN_PSEUDONYM_KEY_BYTES} bytes"
        )
    return SecretBytes(key)


def check_paths(settings: Settings) -> list[str]:
    """Problems with folders that must exist before the daemon starts (schemas)."""
    return [
        f"{settings.config_path}: paths.schemas: {folder} is not a folder"
        for folder in settings.schemas
        if not folder.is_dir()
    ]
