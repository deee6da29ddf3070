"""Producer settings: keyword overrides are validated like the environment."""

import pydantic
import pytest

from producer import Producer, Settings


def test_a_keyword_override_of_the_wrong_type_is_refused():
    with pytest.raises(pydantic.ValidationError, match="max_payload_bytes"):
        Producer("sqlite://", max_payload_bytes="lots")


def test_an_override_on_top_of_given_settings_is_validated_too():
    settings = Settings(database_url="sqlite://")
    with pytest.raises(pydantic.ValidationError, match="max_payload_bytes"):
        Producer(settings=settings, max_payload_bytes="lots")
    with pytest.raises(pydantic.ValidationError, match="allowed_cidrs"):
        Producer(settings=settings, allowed_cidrs=["not a range"])


def test_an_unknown_override_is_refused():
    with pytest.raises(pydantic.ValidationError, match="max_payload_byte"):
        Producer("sqlite://", max_payload_byte=4096)


def test_overrides_win_over_the_environment_and_over_given_settings(monkeypatch):
    monkeypatch.setenv("WEBHOOKS_MAX_PAYLOAD_BYTES", "5000")
    assert Producer("sqlite://").settings.max_payload_bytes == 5000
    assert Producer("sqlite://", max_payload_bytes=6000).settings.max_payload_bytes == 6000
    given = Settings(database_url="sqlite://", max_payload_bytes=7000, https_only=True)
    merged = Producer(settings=given, max_payload_bytes="8000").settings
    assert merged.max_payload_bytes == 8000 and merged.https_only is True


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("proxy.internal:3128", "http:// or https://"),
        ("socks5://proxy.internal:1080", "http:// or https://"),
        ("http://proxy.internal:3128/path", "path"),
        ("http://proxy.internal:99999", "not a valid URL"),
        ("http://", "with a host"),
    ],
)
def test_a_malformed_egress_proxy_is_refused_at_start_up(value, reason):
    with pytest.raises(pydantic.ValidationError, match=reason):
        Settings(egress_proxy=value)


def test_an_egress_proxy_url_is_kept_and_empty_means_none():
    assert Settings(egress_proxy="http://user:pw@proxy.internal:3128").egress_proxy == (
        "http://user:pw@proxy.internal:3128"
    )
    assert Settings(egress_proxy="").egress_proxy is None
