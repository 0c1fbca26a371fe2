"""Small data sets for examples and tests, shipped with the package."""

from emimpute.datasets._loaders import load_airquality, load_blood_sugar

__all__ = ["load_airquality", "load_blood_sugar"]
