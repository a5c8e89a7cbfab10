"""The seed note's remaining examples, run through `import lamina as keras` (sizes made small)."""
import numpy as np
import pytest

import lamina as keras
from lamina.layers import (Activation, Conv2D, Dense, Input, MaxPooling2D, TimeDistributed)
from lamina.models import Model, Sequential


@pytest.fixture(autouse=True)
def fresh():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


def test_inception_module_builds_summarises_and_trains():
    input_img = Input(shape=(16, 16, 3))
    tower_1 = Conv2D(8, (1, 1), padding="same", activation="relu")(input_img)
    tower_1 = Conv2D(8, (3, 3), padding="same", activation="relu")(tower_1)
    tower_2 = Conv2D(8, (1, 1), padding="same", activation="relu")(input_img)
    tower_2 = Conv2D(8, (5, 5), padding="same", activation="relu")(tower_2)
    tower_3 = MaxPooling2D((3, 3), strides=(1, 1), padding="same")(input_img)
    tower_3 = Conv2D(8, (1, 1), padding="same", activation="relu")(tower_3)
    output = keras.layers.concatenate([tower_1, tower_2, tower_3], axis=1)
    assert output.shape == (None, 48, 16, 8)
    output = keras.layers.concatenate([tower_1, tower_2, tower_3], axis=-1)
    assert output.shape == (None, 16, 16, 24)
    model = Model(input=input_img, output=output)
    lines = []
    model.summary(print_fn=lines.append)
    assert "concatenate_1 (Concatenate)" in "\n".join(lines)
    assert model.count_params() == (3 * 8 + 8) * 3 + (8 * 9 * 8 + 8) + (8 * 25 * 8 + 8)
    model.compile(optimizer="adam", loss="mse")
    x = np.random.rand(8, 16, 16, 3).astype("float32")
    y = np.random.rand(8, 16, 16, 24).astype("float32")
    history = model.fit(x, y, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_residual_connection_on_a_convolution():
    x = Input(shape=(12, 12, 3))
    y = Conv2D(3, (3, 3), padding="same")(x)
    output = keras.layers.add([x, y])
    model = Model(inputs=x, outputs=output)
    data = np.random.rand(2, 12, 12, 3).astype("float32")
    conv = model.layers[1]
    np.testing.assert_allclose(model.predict(data, verbose=0),
                               data + conv(data).detach().numpy(), rtol=1e-5, atol=1e-6)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(data, data * 2, epochs=1, verbose=0)


def test_image_classifier_becomes_a_video_classifier_with_time_distributed():
    inputs = Input(shape=(12,))
    x = Dense(8, activation="relu")(inputs)
    predictions = Dense(4, activation="softmax")(x)
    model = Model(inputs=inputs, outputs=predictions)
    input_sequences = Input(shape=(5, 12))
    processed_sequences = TimeDistributed(model)(input_sequences)
    assert processed_sequences.shape == (None, 5, 4)
    video = Model(input_sequences, processed_sequences)
    frames = np.random.rand(3, 5, 12).astype("float32")
    np.testing.assert_allclose(video.predict(frames, verbose=0)[:, 2],
                               model.predict(frames[:, 2], verbose=0), rtol=1e-5, atol=1e-6)


def test_callbacks_example_loss_history_and_checkpoint(tmp_path):
    model = Sequential()
    model.add(Dense(10, input_dim=20, kernel_initializer="uniform"))
    model.add(Activation("softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="rmsprop")

    class LossHistory(keras.callbacks.Callback):
        def on_train_begin(self, logs={}):  # noqa: B006 - the seed's own signature
            self.losses = []

        def on_batch_end(self, batch, logs={}):  # noqa: B006
            self.losses.append(logs.get("loss"))

    history = LossHistory()
    path = str(tmp_path / "weight.hdf5")
    checkpointer = keras.callbacks.ModelCheckpoint(filepath=path, verbose=0,
                                                   save_best_only=True)
    x_train = np.random.rand(256, 20).astype("float32")
    y_train = keras.utils.to_categorical(np.random.randint(10, size=256), 10)
    x_test, y_test = x_train[:64], y_train[:64]
    logs = model.fit(x_train, y_train, batch_size=128, epochs=4, verbose=0,
                     validation_data=(x_test, y_test), callbacks=[history, checkpointer])
    assert len(history.losses) == 4 * 2 and all(np.isfinite(history.losses))
    restored = keras.models.load_model(path)  # the weights of the epoch with the best val_loss
    assert restored.evaluate(x_test, y_test, verbose=0) == pytest.approx(
        min(logs.history["val_loss"]), rel=1e-5)


def test_subclassed_simple_mlp_with_batchnorm_and_dropout():
    class SimpleMLP(keras.Model):
        def __init__(self, use_bn=False, use_dp=False, num_classes=10):
            super(SimpleMLP, self).__init__(name="mlp")
            self.use_bn = use_bn
            self.use_dp = use_dp
            self.num_classes = num_classes
            self.dense1 = keras.layers.Dense(32, activation="relu")
            self.dense2 = keras.layers.Dense(num_classes, activation="softmax")
            if self.use_dp:
                self.dp = keras.layers.Dropout(0.5)
            if self.use_bn:
                self.bn = keras.layers.BatchNormalization(axis=-1)

        def call(self, inputs):
            x = self.dense1(inputs)
            if self.use_dp:
                x = self.dp(x)
            if self.use_bn:
                x = self.bn(x)
            return self.dense2(x)

    model = SimpleMLP(use_bn=True, use_dp=True)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.rand(128, 16).astype("float32")
    y = (x[:, 0] * 10).astype("int64")
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    moving_mean = model.bn.get_weights()[2]
    assert np.abs(moving_mean).sum() > 0  # moving statistics were updated in training
    assert len(model.weights) == 2 + 4 + 2
    with pytest.raises(NotImplementedError, match="subclassed"):
        model.to_json()
