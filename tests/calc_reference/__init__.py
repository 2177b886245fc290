"""The calculation core as it was before the performance work of issue 11 (commit a5b401e),
kept only as a reference: tests/test_calc_reference.py checks that the optimised engine in calc/
gives the same amounts, schedules, refusals and traces, step for step, on every claim it draws.
Not used by the product. The modules share calc's models, parameters, items, money and rates."""
