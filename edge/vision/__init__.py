"""Vision stage: the ONNX detector, output decoding, class filters, the tracker and its Kalman filter."""
