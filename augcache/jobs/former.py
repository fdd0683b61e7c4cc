"""The code part of the reuse keys of the version before this one, whose entries this version takes
as its own (see :func:`augcache.jobs.reuse.rekey_former`).

The package moved into folders by concept; the code each job runs moved with it and computes the
same bytes (the manifests, stores, heads and reports of a run made by the version before are
those this version makes), but a key names the code by its files, so every key changed. These are
the code hashes of each reusable kind in that version: an entry it kept is re-keyed once, with a
note in the log, instead of computed again. A kind whose code since computes other bytes must
leave this table.

Checked side by side on a small demo run (K = 2, cached, noaug and replay, a test-time view): the
version before and this one made the same manifests, stores (every dataset and attribute) and
head metrics, and this version, run over the former's results, re-keyed its 16 entries and
computed none of them.
"""

# {reuse kind: sha256 of the code a job of that kind ran in the version before this one}
FORMER_CODE = {
    "index_dataset": "34c73b5132a58bb510b5a240093291f7a6bb610dc9e6c423b6ffa75d771ad98d",
    "make_demo_base": "ee694f9d5990bff0bb9364b9620e410ed674fe3da9b17ae99434d6fd730fffec",
    "check_conv_base": "f433386c59504ed8397f09e41b03a1e588c092a5982dafabac61dab21df40a34",
    "write_manifest": "b92738aea8fab05025fe8e37c40423a2cc4b190d4f3c96a25275901f4143278c",
    "extract_epoch": "2e718175773c08a14c809b271fc4190099726241c7c064a86414a2de6c497f33",
    "extract_unaugmented": "f51095efe22af20da4c044996c919248af5d375894a06bbbdc1ed27a37e113b0",
    "extract_view": "04607968e41ffcc030dbf8661d464252c04cd52647dbe86a6a53e7a23e2fad52",
    "train_head": "a541886d08b3487745350aa0476308099c1705575d7093833f508b7ab7d5a4bd",
    "export_model": "888775edc16b86ec98b8e88abaef9729200492b0019ee33314dde2a7e37ff19f",
}
