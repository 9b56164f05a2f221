"""Diagnosis of a failing check: localising the culprit, explaining, shrinking."""
