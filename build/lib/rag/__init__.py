"""Arolwg: answers about Care Inspectorate Wales reports, cited with the reports' own words.

>>> from rag import query
>>> query("How many case files were reviewed in Cardiff?").citations[0].authority
'Cardiff Council'
"""

from rag.api import as_retriever, chain, query, retrieve
from rag.types import Answer, Citation, Passage

__all__ = ["Answer", "Citation", "Passage", "as_retriever", "chain", "query", "retrieve"]
