"""Reports: pure functions over the models that return peewee queries or pandas DataFrames.

They never import flask; views render and download what they return.
"""
