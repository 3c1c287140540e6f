import pytest

from hub.contract.addresses import identity_kind, normalise_email, normalise_phone, normalise_telegram
from hub.contract.errors import RejectedInput
from hub.store.models import IdentityKind


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Ana.Silva@Example.COM", "ana.silva@example.com"),
        ("  <bob@example.org> ", "bob@example.org"),
        ("ana@Bücher.Example", "ana@xn--bcher-kva.example"),
        ("用户@例子.测试", "用户@xn--fsqu00a.xn--0zwm56d"),
    ],
)
def test_email_is_lowercased_and_idna_encoded(raw, expected):
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["not-an-address", "@example.com", "ana@", "ana smith@example.com", "a@exa mple.com"])
def test_malformed_email_is_rejected_with_the_address_named(raw):
    with pytest.raises(RejectedInput) as err:
        normalise_email(raw)
    assert repr(raw) in err.value.message or "invalid domain" in err.value.message


@pytest.mark.parametrize(
    "raw, region, expected",
    [
        ("+44 20 7946 0958", None, "+442079460958"),
        ("+1 (415) 555-2671", None, "+14155552671"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+49 30 901820", None, "+4930901820"),
    ],
)
def test_phone_numbers_become_e164(raw, region, expected):
    assert normalise_phone(raw, region) == expected


def test_phone_without_country_code_needs_a_region():
    with pytest.raises(RejectedInput, match="country code"):
        normalise_phone("020 7946 0958")


def test_telegram_ids_are_digits():
    assert normalise_telegram(" 0012345 ") == "12345"
    with pytest.raises(RejectedInput):
        normalise_telegram("@someone")


def test_identity_kind_follows_channel_then_declared_then_shape():
    assert identity_kind("email", "x@y.z") is IdentityKind.email
    assert identity_kind("voice", "+4930901820") is IdentityKind.phone
    assert identity_kind("telegram", "123") is IdentityKind.telegram
    assert identity_kind("api", "x@y.z") is IdentityKind.email
    assert identity_kind("api", "+4930901820") is IdentityKind.phone
    assert identity_kind("api", "visitor-42") is IdentityKind.web
    assert identity_kind("api", "visitor-42", "telegram") is IdentityKind.telegram
    with pytest.raises(RejectedInput):
        identity_kind("api", "x", "fax")
