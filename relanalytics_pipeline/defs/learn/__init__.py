"""Learn: the similar-won-deals model (scikit-learn), trained on every run from the dbt features.

The features come from dbt (`intermediate.int_opportunity_features`); the neighbours go back to
the warehouse as `learn.won_deal_neighbours`, a dbt source from which dbt builds the BI marts
`similar_won_deals` and `won_deal_benchmarks` (views, with their contracts enforced).
"""
