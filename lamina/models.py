"""`keras.models`: the model classes and the functions that rebuild models from files."""
from lamina.engine.functional import Functional
from lamina.engine.model import Model
from lamina.engine.sequential import Sequential
