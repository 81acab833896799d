import json

import pytest

from doctune.names import AdapterStatus, Decision, parse_served_name, served_name


def test_a_served_name_parses_back_to_its_library_and_version() -> None:
    assert served_name("ledger-kite", 12) == "ledger-kite@v12"
    assert parse_served_name(served_name("ledger-kite", 12)) == ("ledger-kite", 12)


@pytest.mark.parametrize("name", ["ledgerkite", "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2", "@v3", "a@vx", "a@v"])
def test_stable_names_and_base_models_are_not_adapter_versions(name: str) -> None:
    assert parse_served_name(name) is None


def test_states_are_stored_and_reported_as_their_plain_values() -> None:
    # The registry's columns, the reports' JSON and the XCom between tasks hold the plain words.
    assert json.dumps({"status": AdapterStatus.PREVIOUS, "decision": Decision.REJECT}) == (
        '{"status": "previous", "decision": "reject"}'
    )
    assert Decision("promote") is Decision.PROMOTE
