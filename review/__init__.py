"""Human review of teacher labels: a queue ordered by uncertainty, reviews per reviewer, agreement numbers, gold
exports and the Argilla / Label Studio formats."""
