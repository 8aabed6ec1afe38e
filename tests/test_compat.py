"""db_tf.compat: each private TensorFlow API db-tf relies on, called directly, so an upgrade that moves one
fails here with its name rather than deep inside training or inference."""
import numpy as np
import tensorflow as tf

from db_tf import compat


def test_strategy_supports_no_merge_call():
    assert compat.strategy_supports_no_merge_call() is True      # no strategy: plain tf.cond is fine
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert compat.strategy_supports_no_merge_call() in (True, False)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        assert isinstance(compat.strategy_supports_no_merge_call(), bool)


def test_freeze_concrete_function_bakes_variables_in():
    weight = tf.Variable([[2.0], [3.0]])
    function = tf.function(lambda x: tf.matmul(x, weight), input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    frozen = compat.freeze_concrete_function(function.get_concrete_function())
    weight.assign([[0.0], [0.0]])                                # the frozen graph keeps the old values
    (out,) = frozen(tf.constant([[1.0, 1.0]]))
    np.testing.assert_array_equal(out.numpy(), [[5.0]])
    assert not frozen.graph.variables


def test_parse_event_reads_a_written_summary(tmp_path):
    from db_tf.training import summaries

    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        summaries.scalar("loss", 0.25, step=7)
    writer.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    events = [compat.parse_event(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
    values = [(e.step, v.tag) for e in events for v in e.summary.value]
    assert values == [(7, "loss")]
