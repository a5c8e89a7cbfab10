"""Train a small network on scikit-learn's 8x8 handwritten digits with `import lamina as keras`.

Run: python examples/demo.py
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import lamina as keras
from lamina import layers

keras.utils.set_random_seed(0)
digits = load_digits()
x = (digits.data / 16.0).astype("float32")          # 1797 images of 8x8 pixels, in [0, 1]
y = keras.utils.to_categorical(digits.target, 10)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)

model = keras.Sequential([
    keras.Input(shape=(64,)),
    layers.Dense(64, activation="relu"),
    layers.Dropout(0.1),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.summary()
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=32, epochs=15, validation_split=0.1)

loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"\nTest loss: {loss:.4f}  test accuracy: {accuracy:.4f} (chance is 0.10)")

probabilities = model.predict(x_test[:8], verbose=0)
print("predicted:", np.argmax(probabilities, axis=1).tolist())
print("true:     ", np.argmax(y_test[:8], axis=1).tolist())
