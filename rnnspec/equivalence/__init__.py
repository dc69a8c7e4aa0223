"""The equivalence harness: weight porting, inputs a user would feed, and comparison.

Nothing here is imported on the compile path; numpy and the frameworks are imported lazily.
"""
