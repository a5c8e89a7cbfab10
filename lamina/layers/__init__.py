"""The Keras layers, as `keras.layers`."""
from lamina.engine.input_layer import Input, InputLayer
from lamina.engine.layer import InputSpec, Layer
from lamina.layers.convolutional import (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D,
                                         Conv3DTranspose, Convolution1D, Convolution1DTranspose,
                                         Convolution2D, Convolution2DTranspose, Convolution3D,
                                         Convolution3DTranspose, DepthwiseConv1D, DepthwiseConv2D,
                                         SeparableConv1D, SeparableConv2D, SeparableConvolution1D,
                                         SeparableConvolution2D)
from lamina.layers.core import (Activation, Dense, Dropout, Embedding, Flatten, Lambda, Masking,
                                Permute, RepeatVector, Reshape)
from lamina.layers.merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
                                   Subtract, add, average, concatenate, dot, maximum, minimum,
                                   multiply, subtract)
from lamina.layers.pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, AvgPool1D,
                                   AvgPool2D, AvgPool3D, GlobalAveragePooling1D,
                                   GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalAvgPool1D,
                                   GlobalAvgPool2D, GlobalAvgPool3D, GlobalMaxPool1D,
                                   GlobalMaxPool2D, GlobalMaxPool3D, GlobalMaxPooling1D,
                                   GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPool1D, MaxPool2D,
                                   MaxPool3D, MaxPooling1D, MaxPooling2D, MaxPooling3D)
from lamina.layers.reshaping import (Cropping1D, Cropping2D, Cropping3D, UpSampling1D,
                                     UpSampling2D, UpSampling3D, ZeroPadding1D, ZeroPadding2D,
                                     ZeroPadding3D)
from lamina.layers.recurrent import (GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell, SimpleRNN,
                                     SimpleRNNCell, StackedRNNCells)
from lamina.layers.wrappers import TimeDistributed, Wrapper
from lamina.layers.activation import ELU, LeakyReLU, PReLU, ReLU, Softmax
from lamina.layers.attention import AdditiveAttention, Attention, MultiHeadAttention
from lamina.layers.normalization import (BatchNormalization, GroupNormalization,
                                         LayerNormalization, UnitNormalization)
from lamina.layers.preprocessing import Normalization, Rescaling
from lamina.layers.regularization import (ActivityRegularization, AlphaDropout, GaussianDropout,
                                          GaussianNoise, SpatialDropout1D, SpatialDropout2D,
                                          SpatialDropout3D)
