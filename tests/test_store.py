"""The record store (kb/store.py): written to SQLite, read back with the claims left on disk."""

from pathlib import Path

import pytest

from kb import views
from kb.knowledge_base import KnowledgeBase
from kb.store import STORE_FILE, ClaimRows, Store, claim_facts, claim_ids, claim_source_ids


@pytest.fixture(scope="module")
def stores(kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Store]:
    """(the bundled corpus's store in memory, the same written and read back)."""
    memory = Store(list(kb.store.sources), list(kb.store.claims), kb.store.vocabulary)
    folder = tmp_path_factory.mktemp("store")
    memory.write(folder)
    return memory, Store.read(folder)


def test_a_read_store_answers_as_the_one_in_memory(stores):
    memory, disk = stores
    assert isinstance(disk.claims, ClaimRows) and not isinstance(memory.claims, ClaimRows)
    assert len(disk.claims) == len(memory.claims) > 10
    assert list(disk.claims) == list(memory.claims)  # the same claims in the same order
    assert disk.claims[0] == memory.claims[0] and disk.claims[-1] == memory.claims[-1]
    assert disk.claims[3:6] == list(memory.claims[3:6])
    with pytest.raises(IndexError):
        disk.claims[len(memory.claims)]
    assert disk.sources == memory.sources and disk.vocabulary.terms == memory.vocabulary.terms
    claim = memory.claims[7]
    assert disk.claim_by_id[claim.id] == claim and claim.id in disk.claim_by_id
    assert "nobody-0000000000" not in disk.claim_by_id and disk.claim_by_id.get("x") is None
    with pytest.raises(KeyError):
        disk.claim_by_id["nobody-0000000000"]
    assert len(disk.claim_by_id) == len(memory.claim_by_id)
    assert disk.claims_by_source[claim.source_id] == memory.claims_by_source[claim.source_id]
    assert disk.claims_by_source.get("no-such-source", []) == []
    assert set(disk.claims_by_source) == set(memory.claims_by_source)


def test_ids_and_facts_come_from_columns_without_reading_claims(stores):
    memory, disk = stores
    assert claim_ids(disk.claims) == claim_ids(memory.claims) == [c.id for c in memory.claims]
    assert claim_source_ids(disk.claims) == [c.source_id for c in memory.claims]
    assert list(claim_facts(disk.claims)) == list(claim_facts(memory.claims))


def test_a_damaged_store_says_to_rebuild(tmp_path: Path):
    (tmp_path / STORE_FILE).write_bytes(b"not a database" * 100)
    with pytest.raises(OSError, match="rebuild with: kb build"):
        Store.read(tmp_path)


def test_counts_and_maps_are_computed_once_per_build(kb: KnowledgeBase):
    first = kb.stats()
    assert kb.stats() == first and first["claims"] == len(kb.store.claims)
    assert views._tag_counts(kb.build) is views._tag_counts(kb.build)  # cached: the claims are read once
    assert kb.evidence_map() == kb.evidence_map()
