"""Reading Authentication-Results (RFC 8601): only the named receiving server's topmost header, and
only a pass aligned with the From domain, verifies a sender."""

from __future__ import annotations

from channels.email.authentication import results, sender_verified

MX = "mx.shop.example"


def test_results_read_methods_properties_and_comments():
    authserv, found = results(f"{MX} 1; dkim=pass (good signature (rsa-sha256)) header.d=Example.com header.s=s1;\r\n "
                              "spf=softfail smtp.mailfrom=x@y.example; dmarc=pass (p=none) header.from=example.com")
    assert authserv == MX
    assert [(r["method"], r["result"]) for r in found] == [("dkim", "pass"), ("spf", "softfail"), ("dmarc", "pass")]
    assert found[0]["header.d"] == "example.com" and found[2]["header.from"] == "example.com"
    assert results("mx.shop.example; none") == (MX, [])


def test_alignment_and_trust():
    dkim_parent = [f"{MX}; dkim=pass header.d=example.com"]
    assert sender_verified(dkim_parent, "ana@mail.example.com", MX)  # relaxed: a parent domain signed
    assert not sender_verified(dkim_parent, "ana@example.com.evil.example", MX)
    assert not sender_verified(dkim_parent, "ana@notexample.com", MX)
    assert not sender_verified([f"{MX}; spf=pass smtp.mailfrom=example.com"], "ana@example.com", MX)  # SPF says nothing of From
    assert not sender_verified(dkim_parent, "ana@example.com", None)
    assert not sender_verified(dkim_parent, "not an address", MX)
    assert sender_verified(["MX.Shop.Example; dmarc=pass header.from=example.com"], "ana@EXAMPLE.com", MX)


def test_pathological_headers_stay_linear_and_verify_nothing():
    huge = f"{MX}; " + "(" * 50_000 + "dkim=pass header.d=example.com" + ")" * 50_000
    assert not sender_verified([huge], "ana@example.com", MX)
    many = ["mx.evil.example; dmarc=pass header.from=example.com"] * 10_000
    assert not sender_verified(many + [f"{MX}; dmarc=pass header.from=example.com"], "ana@example.com", MX)
