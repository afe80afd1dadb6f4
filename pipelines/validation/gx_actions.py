"""A Data Docs action that rebuilds the site once per checkpoint run (imported lazily: loads GX).

Why: GX's stock ``UpdateDataDocsAction`` re-renders the whole site index after every validation
result; with six tables that was about 60% of a validation's run time. No ``from __future__ import
annotations`` here: GX's pydantic models need the ``Literal`` type at class creation.
"""

from typing import Literal

from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier


class UpdateDataDocsOnceAction(UpdateDataDocsAction):
    type: Literal["update_data_docs_once"] = "update_data_docs_once"

    def run(self, checkpoint_result, action_context=None) -> dict:
        identifiers: list = []
        for result_id, result in checkpoint_result.run_results.items():
            identifiers += [result_id, ExpectationSuiteIdentifier(name=result.suite_name)]
        if identifiers:
            self._build_data_docs(site_names=self.site_names, resource_identifiers=identifiers)
        return {}
