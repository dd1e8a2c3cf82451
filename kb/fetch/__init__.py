"""The network clients: Crossref, PubMed E-utilities and OpenAlex, over one HTTP client.

This package is the only code in Evidence KB that uses the network. It returns the services'
raw responses; parsing them is the parsers' job (``kb.ingest``) and writing them into the corpus
is ``kb.corpus.identifiers``' (records by identifier) and ``kb.corpus.importer``'s (a PDF's DOI).
"""
