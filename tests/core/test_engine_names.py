"""Which names an engine page is read by and what a page says, as tables of Prometheus text
in each server's own names (exporter/probes/engines/ cites each server's source), read through
the public steps the engine probe takes (exporter/probes/engine.py): `engines_for` (flavour and
configured names), `LineFilter` (only our lines), `parse_found`, `pick_sample`. Configured
names replace a flavour's, per quantity; counts sum over engines, the KV ratio is the fullest
engine's; what is not a number of ours is refused with an error that says why."""

from __future__ import annotations

import pytest

from exporter.config.engine import EngineNames
from exporter.probes.engine_metrics import (
    MAX_LINE,
    MAX_LINES,
    EngineParseError,
    LineFilter,
    parse_found,
    pick_sample,
)
from exporter.probes.engines import engines_for
from exporter.probes.results import EngineSample, EngineUnit


def read_page(
    page: bytes, flavour: str, names: EngineNames | None = None, chunk: int = 0
) -> EngineSample:
    """What the engine probe makes of a page for `checks.engine.flavour`/`names`, fed whole
    or in chunks of `chunk` bytes as it arrives from the network."""
    engines = engines_for(flavour, names)
    wanted = tuple(dict.fromkeys(n for e in engines for n in e.names.all()))
    lines = LineFilter(wanted)
    step = chunk or max(1, len(page))
    for at in range(0, len(page), step):
        lines.feed(page[at : at + step])
    return pick_sample(parse_found(lines.finish(), wanted), engines)


VLLM = b"""# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 1.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.75
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} 1000.0
vllm:generation_tokens_total{engine="1",model_name="m"} 500.0
"""


def test_a_named_flavour_takes_configured_names_per_quantity() -> None:
    """`flavour: vllm` with `names: {waiting: [...]}`: the waiting count from the configured
    name, everything else still from vLLM's own names."""
    page = VLLM + b"# TYPE my_queue gauge\nmy_queue 7\n"
    s = read_page(page, "vllm", EngineNames(waiting=["my_queue"]))
    assert (s.flavour, s.running, s.waiting, s.kv_usage, s.progress) == (
        "vllm",
        5.0,
        7.0,
        0.75,
        1500.0,
    )
    assert read_page(page, "vllm").waiting == 1.0  # without the override


def test_auto_with_names_reads_only_the_configured_names() -> None:
    page = VLLM + b"# TYPE q gauge\nq 4\n# TYPE busy gauge\nbusy 2\n"
    s = read_page(page, "auto", EngineNames(running=["busy"], waiting=["q"]))
    assert s.flavour == "custom"
    assert (s.running, s.waiting, s.kv_usage, s.progress) == (2.0, 4.0, None, None)


@pytest.mark.parametrize(
    ("name", "page", "flavour", "values"),
    [
        (
            "vLLM, two engines: counts summed, KV the fullest",
            VLLM,
            "vllm",
            (5.0, 1.0, 0.75, 1500.0),
        ),
        (
            "vLLM before v0.10: the older KV name",
            b"vllm:num_requests_running 1\nvllm:gpu_cache_usage_perc 0.5\n",
            "vllm",
            (1.0, None, 0.5, None),
        ),
        (
            "the newer KV name wins when both are there",
            b"vllm:num_requests_running 1\nvllm:gpu_cache_usage_perc 0.5\nvllm:kv_cache_usage_perc 0.1\n",
            "vllm",
            (1.0, None, 0.1, None),
        ),
        (
            "SGLang",
            b"sglang:num_running_reqs 2\nsglang:num_queue_reqs 6\nsglang:token_usage 0.9\n"
            b"# TYPE sglang:generation_tokens counter\nsglang:generation_tokens_total 42\n",
            "sglang",
            (2.0, 6.0, 0.9, 42.0),
        ),
        (
            "llama-server: decode calls are the progress",
            b"llamacpp:requests_processing 1\nllamacpp:requests_deferred 0\n"
            b"llamacpp:n_decode_total 77\nllamacpp:tokens_predicted_total 40\n",
            "llamacpp",
            (1.0, 0.0, None, 77.0),
        ),
        (
            "a longer name that shares the prefix is not ours",
            b"vllm:num_requests_running 1\nvllm:num_requests_running_max 99\n",
            "vllm",
            (1.0, None, None, None),
        ),
    ],
)
def test_each_server_page(
    name: str, page: bytes, flavour: str, values: tuple[float | None, ...]
) -> None:
    s = read_page(page, "auto")
    assert s.flavour == flavour, name
    assert (s.running, s.waiting, s.kv_usage, s.progress) == values, name


@pytest.mark.parametrize(
    ("name", "page", "says"),
    [
        ("another server's page", b"http_requests_total 5\n", "no engine metrics of"),
        (
            "only a counter: no running or waiting",
            b"vllm:generation_tokens_total 5\n",
            "neither running nor waiting",
        ),
        ("a negative count", b"vllm:num_requests_running -1\n", "not a usable running value"),
        (
            "NaN",
            b"vllm:num_requests_waiting NaN\nvllm:num_requests_running 1\n",
            "not a usable waiting value",
        ),
        (
            "a KV ratio above 1",
            b"vllm:num_requests_running 1\nvllm:kv_cache_usage_perc 1.5\n",
            "not a ratio",
        ),
        ("not Prometheus text", b"vllm:num_requests_running one\n", "not Prometheus text format"),
        ("not UTF-8", b'vllm:num_requests_running{model_name="\xff"} 1\n', "not valid UTF-8"),
    ],
)
def test_pages_that_say_nothing_usable(name: str, page: bytes, says: str) -> None:
    with pytest.raises(EngineParseError, match=says):
        read_page(page, "auto")


def test_a_ratio_of_exactly_one_is_a_full_cache() -> None:
    s = read_page(b"vllm:num_requests_running 1\nvllm:kv_cache_usage_perc 1.0\n", "vllm")
    assert s.kv_usage == 1.0
    page = b"vllm:num_requests_running 1\nvllm:kv_cache_usage_perc 1.000000001\n"  # float noise
    assert read_page(page, "vllm").kv_usage == 1.000000001


def test_only_sample_lines_of_our_names_are_read() -> None:
    """A comment line about our names (even a bogus `# TYPE`) is not a sample: the probe keeps
    only the sample lines, so the page is read by its samples."""
    page = b"# TYPE vllm:num_requests_running bogus\nvllm:num_requests_running 1\n"
    assert read_page(page, "vllm").running == 1.0


def test_a_longer_name_before_ours_does_not_hide_ours() -> None:
    """Another metric whose name starts like ours is not read, not even to fail on it."""
    page = b"vllm:num_requests_running:max garbage\nvllm:num_requests_running 2\n"
    assert read_page(page, "vllm").running == 2.0


def test_error_messages_are_bounded_and_say_what_was_looked_for() -> None:
    with pytest.raises(EngineParseError) as bad:
        read_page(b"vllm:num_requests_running 1 " + b"x" * 300 + b"\n", "vllm")
    assert len(str(bad.value)) == len("not Prometheus text format: ") + 120
    six = EngineNames(running=["r1", "r2", "r3"], waiting=["w1", "w2", "w3"])
    with pytest.raises(EngineParseError) as none:
        read_page(b"other 1\n", "auto", six)
    assert (
        str(none.value) == "no engine metrics of custom found (looked for r1, r2, r3, w1, w2, w3)"
    )
    seven = EngineNames(running=["r1", "r2", "r3"], waiting=["w1", "w2", "w3", "w4"])
    with pytest.raises(EngineParseError) as more:
        read_page(b"other 1\n", "auto", seven)
    assert str(more.value).endswith("(looked for r1, r2, r3, w1, w2, w3, ...)")


@pytest.mark.parametrize(("lines", "refused"), [(MAX_LINES, False), (MAX_LINES + 1, True)])
def test_at_most_max_lines_of_our_names(lines: int, refused: bool) -> None:
    page = b"".join(b'vllm:num_requests_running{engine="%d"} 1\n' % i for i in range(lines))
    if refused:
        with pytest.raises(EngineParseError, match=f"more than {MAX_LINES} lines"):
            read_page(page, "vllm")
    else:
        s = read_page(page, "vllm")
        assert s.running == lines and len(s.engines) == lines  # each engine judged on its own


def test_an_endless_line_of_our_names_is_refused_not_skipped() -> None:
    """Fed as it arrives, a line of a stranger's name longer than MAX_LINE is skipped; one of
    ours is refused, so a page cannot hide one of our series behind a line too long to read."""
    page = (
        b"vllm:num_requests_running 1\n"
        b'vllm:num_requests_waiting{model_name="' + b"m" * 2 * MAX_LINE + b'"} 5\n'
    )
    with pytest.raises(EngineParseError, match=f"longer than {MAX_LINE} bytes"):
        read_page(page, "vllm", chunk=16 << 10)
    stranger = b'other_metric{x="' + b"x" * 2 * MAX_LINE + b'"} 1\n'
    sample = read_page(stranger + b"vllm:num_requests_running 1\n", "vllm", chunk=16 << 10)
    assert sample.running == 1.0


def test_the_kv_ratio_of_one_engine_in_parts_is_its_fullest_part() -> None:
    """Several KV series of one engine (here two model names): the fullest, never their sum."""
    page = (
        b'vllm:num_requests_running{engine="0",model_name="a"} 1\n'
        b'vllm:kv_cache_usage_perc{engine="0",model_name="a"} 0.5\n'
        b'vllm:kv_cache_usage_perc{engine="0",model_name="b"} 0.75\n'
    )
    assert read_page(page, "vllm").kv_usage == 0.75


@pytest.mark.parametrize(
    ("name", "page", "refused"),
    [
        ("a million running requests is still a queue", b"vllm:num_requests_running 1e6\n", False),
        ("one more is no server's queue", b"vllm:num_requests_running 1000001\n", True),
        ("waiting is bounded the same way", b"vllm:num_requests_waiting 1000001\n", True),
        (
            "a token counter at 1e15 is still a count",
            b"vllm:num_requests_running 1\nvllm:generation_tokens_total 1e15\n",
            False,
        ),
        (
            "one more token is not",
            b"vllm:num_requests_running 1\nvllm:generation_tokens_total 1000000000000001\n",
            True,
        ),
    ],
)
def test_absurd_values_are_refused_at_their_bound(name: str, page: bytes, refused: bool) -> None:
    if refused:
        with pytest.raises(EngineParseError, match="not a plausible"):
            read_page(page, "vllm")
    else:
        assert read_page(page, "vllm").flavour == "vllm", name


@pytest.mark.parametrize(
    ("name", "page", "flavour", "units"),
    [
        (
            "one engine without an engine label: no units to judge apart",
            b"vllm:num_requests_running 1\nvllm:num_requests_waiting 2\n",
            "vllm",
            (),
        ),
        (
            "a server no module knows never sleeps or defers",
            b"busy 1\nq 2\n",
            "auto",
            (),
        ),
        (
            "one engine asleep on purpose, without an engine label",
            b"vllm:num_requests_running 0\nvllm:num_requests_waiting 0\n"
            b'vllm:engine_sleep_state{sleep_state="awake"} 0\n',
            "vllm",
            (EngineUnit("", 0.0, 0.0, None, asleep=True),),
        ),
        (
            "one engine deferring requests on purpose, without an engine label",
            b"vllm:num_requests_running 0\nvllm:num_requests_waiting 3\n"
            b'vllm:num_requests_waiting_by_reason{reason="deferred"} 3\n',
            "vllm",
            (EngineUnit("", 0.0, 3.0, None, deferred=3.0),),
        ),
        (
            "data parallel: an engine without a quantity another has counts 0 of it",
            b'vllm:num_requests_running{engine="0"} 1\nvllm:num_requests_running{engine="1"} 2\n'
            b'vllm:num_requests_waiting{engine="0"} 4\n',
            "vllm",
            (EngineUnit("0", 1.0, 4.0, None), EngineUnit("1", 2.0, 0.0, None)),
        ),
    ],
)
def test_which_engines_a_page_is_judged_as(
    name: str, page: bytes, flavour: str, units: tuple[EngineUnit, ...]
) -> None:
    custom = EngineNames(running=["busy"], waiting=["q"]) if flavour == "auto" else None
    assert read_page(page, flavour, custom).engines == units, name


def test_the_progress_counter_read_is_named() -> None:
    page = b"vllm:num_requests_running 1\nvllm:generation_tokens_total 5\n"
    assert read_page(page, "vllm").progress_name == "vllm:generation_tokens_total"
    assert read_page(b"vllm:num_requests_running 1\n", "vllm").progress_name == ""


@pytest.mark.parametrize(
    ("deferred", "counted"),
    [
        ("0.0", 0.0),  # the lower bound is a value like any other
        ("4.0", 4.0),
        ("1000000.0", 1e6),  # the upper bound itself still counts
        ("-1.0", 0.0),  # a negative count is nonsense: not subtracted from the queue
        ("1000001.0", 0.0),  # past any real queue: not read as deferred work
    ],
)
def test_vllm_deferred_requests_are_read_within_sane_bounds(deferred: str, counted: float) -> None:
    """vLLM's waiting gauge includes requests deferred on purpose (KV transfer, a LoRA budget:
    `vllm:num_requests_waiting_by_reason{reason="deferred"}`), work the engine cannot do yet and
    no sign of a stall. Only a count a real engine can have is taken as deferred."""
    page = (
        'vllm:num_requests_running{engine="0",model_name="m"} 1.0\n'
        'vllm:num_requests_waiting{engine="0",model_name="m"} 5.0\n'
        f'vllm:num_requests_waiting_by_reason{{engine="0",model_name="m",reason="deferred"}} {deferred}\n'
        'vllm:num_requests_waiting_by_reason{engine="0",model_name="m",reason="capacity"} 1.0\n'
        'vllm:generation_tokens_total{engine="0",model_name="m"} 10.0\n'
    ).encode()
    sample = read_page(page, "vllm")
    assert [(u.name, u.deferred) for u in sample.engines] == [("0", counted)]
