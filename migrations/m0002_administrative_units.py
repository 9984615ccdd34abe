"""Load the 34 provinces and 3,321 communes/wards of 1 July 2025."""

from models.places import load_administrative_units


def up(database):
    load_administrative_units()
