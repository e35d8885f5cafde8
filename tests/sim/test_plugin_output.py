"""The simulated agent cuts plugin output as amazon-ssm-agent does, so parsers meet what AWS returns."""

import pytest

from sim.fleet import ERROR_MARKER, LIST_OUTPUT_LIMIT, plugin_output


def test_short_output_is_stdout_then_the_marker_then_stderr() -> None:
    assert plugin_output("{}\n", "warning\n") == "{}\n" + ERROR_MARKER + "warning\n"
    assert plugin_output("{}\n", "") == "{}\n"


@pytest.mark.parametrize(("out", "err"), [(100, 5000), (3000, 10), (3000, 3000), (2490, 0)])
def test_long_output_is_cut_to_the_agents_capacity(out: int, err: int) -> None:
    assert len(plugin_output("o" * out, "e" * err)) <= LIST_OUTPUT_LIMIT


def test_a_short_report_survives_a_long_stderr_whole() -> None:
    report = '{"doc":"apply","result":"rebooting"}\n'
    output = plugin_output(report, "noise\n" * 1000)
    assert output.startswith(report + ERROR_MARKER)
    assert output.endswith("---Error truncated----")
