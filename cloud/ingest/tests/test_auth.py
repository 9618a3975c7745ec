#!/usr/bin/python3
"""[ingest] eport_ingest.auth alone (no database, no server; docs/cloud.md section 15):
the tokens file format and its errors, tokens made by new_token, constant-time lookup,
every malformed Authorization header refused with a reason (never an exception of another
kind), the map cookie, site scopes of restricted tokens, the loopback rule of serve, and
the redaction of ?token= in the request log."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from eport_ingest import api, auth  # noqa: E402

H = "a" * 64


class TokensFile(unittest.TestCase):
    def test_format(self):
        t = auth.parse_tokens(f"# operators\n\nops {H}\n  rtm {'b' * 64} nlrtm,deham  \n")
        self.assertEqual(t[H], auth.Principal("ops", None))
        self.assertEqual(t["b" * 64].sites, frozenset({"nlrtm", "deham"}))

    def test_errors_name_the_line(self):
        for text, words in ((f"ops {H} a b", "4 fields"), ("ops", "1 fields"), (f"ops {H.upper()}", "SHA-256"),
                            ("ops secret", "SHA-256"), (f"-x {H}", "token name"), (f"ops {H}\nops {'c' * 64}", "twice"),
                            (f"ops {H}\nrtm {H}", "twice"), (f"ops {H} cn.sha", "site 'cn.sha'"),
                            (f"ops {H} a,,b", "site ''")):
            with self.assertRaises(auth.TokensFileError) as cm:
                auth.parse_tokens("# c\n" + text, "tokens.txt")
            self.assertIn(f"tokens.txt:{text.count(chr(10)) + 2}:", str(cm.exception))
            self.assertIn(words, str(cm.exception))

    def test_new_token_round_trip(self):
        token, line = auth.new_token("ops", ("cnsha",))
        self.assertTrue(token.startswith(auth.TOKEN_PREFIX) and token not in line)
        a = auth.Authenticator(None)
        a.tokens = auth.parse_tokens(line)
        self.assertEqual(a.authenticate(f"Bearer {token}"), auth.Principal("ops", frozenset({"cnsha"})))
        self.assertEqual(a.authenticate(None, token).name, "ops")          # the map's cookie
        self.assertNotEqual(auth.new_token("ops")[0], token)
        for bad in ("", "a b", "x" * 65):
            self.assertRaises(auth.TokensFileError, auth.new_token, bad)
        self.assertRaises(auth.TokensFileError, auth.new_token, "ops", ("cn sha",))


class Headers(unittest.TestCase):
    def setUp(self):
        self.token, line = auth.new_token("ops")
        self.a = auth.Authenticator(None)
        self.a.tokens = auth.parse_tokens(line)

    def test_malformed(self):
        for value, reason in ((None, None), ("", "invalid_request"), ("Basic b3BzOnB3", "invalid_request"),
                              ("Bearer", "invalid_token"), ("Bearer    ", "invalid_token"),
                              ("Bearer " + "A" * 5000, "invalid_request"), ("Bearer t\u00f6ken", "invalid_request"),
                              ("Bearer \u0442\u043e\u043a", "invalid_request"), ("Bearer a\x00b", "invalid_request"),
                              ("Bearer a b", "invalid_token"), ("Bearer ept_unknown", "invalid_token"),
                              (f"Bearer {self.token}x", "invalid_token"), (f"Basic {self.token}", "invalid_request")):
            with self.assertRaises(auth.Unauthorized, msg=repr(value)) as cm:
                self.a.authenticate(value)
            self.assertEqual(cm.exception.reason, reason, repr(value))
            self.assertNotIn(self.token, str(cm.exception))
        self.assertEqual(self.a.authenticate(f"bearer {self.token}").name, "ops")    # the scheme is case-blind

    def test_cookie(self):
        self.assertEqual(auth.cookie_of(f"a=1; {auth.COOKIE}={self.token}"), self.token)
        for header in (None, "", "a=1", '\x00;;"', "x" * 9000):
            self.assertIsNone(auth.cookie_of(header))
        c = auth.map_cookie(self.token, secure=True)
        for part in ("HttpOnly", "SameSite=Strict", "Path=/map", "Secure"):
            self.assertIn(part, c)
        self.assertNotIn("Secure", auth.map_cookie(self.token, secure=False))
        with self.assertRaises(auth.Unauthorized):
            self.a.authenticate(None, "not a token")

    def test_redacted_log(self):
        self.assertEqual(api.redact(f"GET /map?site=x&token={self.token} HTTP/1.1"),
                         "GET /map?site=x&token=<redacted> HTTP/1.1")


class Scope(unittest.TestCase):
    def test_sites(self):
        r = auth.Principal("rtm", frozenset({"nlrtm", "deham"}))
        self.assertIsNone(auth.scope(None, None))
        self.assertEqual(auth.scope(None, "cnsha"), ("cnsha",))
        self.assertEqual(auth.scope(auth.Principal("ops"), "cnsha"), ("cnsha",))
        self.assertEqual(auth.scope(r, None), ("deham", "nlrtm"))
        self.assertEqual(auth.scope(r, "nlrtm"), ("nlrtm",))
        with self.assertRaises(auth.Forbidden) as cm:
            auth.scope(r, "cnsha")
        self.assertIn("'cnsha'", str(cm.exception))

    def test_site_param(self):
        self.assertEqual(api.site_param({"site": ["cnsha"]}), "cnsha")
        self.assertIsNone(api.site_param({}))
        for bad in (["cn sha"], [""], ["a", "b"], ["x" * 65], ["a/b"]):
            with self.assertRaises(api.BadRequest) as cm:
                api.site_param({"site": bad})
            self.assertEqual(cm.exception.param, "site")


class Listen(unittest.TestCase):
    def test_loopback_rule(self):
        for host in ("127.0.0.1", "::1", "localhost", "127.3.4.5"):
            self.assertIsNone(auth.listen_problem(host, False, False, False), host)
        for host in ("0.0.0.0", "::", "192.0.2.7", ""):
            problem = auth.listen_problem(host, False, False, False)
            for opt in ("--tokens-file", "--client-ca-file", "--insecure-no-auth"):
                self.assertIn(opt, problem)
            self.assertIsNone(auth.listen_problem(host, True, False, False))
            self.assertIsNone(auth.listen_problem(host, False, True, False))
            self.assertIsNone(auth.listen_problem(host, False, False, True))


if __name__ == "__main__":
    unittest.main(verbosity=1)
