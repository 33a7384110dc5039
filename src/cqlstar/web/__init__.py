"""HTTP plumbing shared by every route: error mapping, request budgets, dependencies."""
