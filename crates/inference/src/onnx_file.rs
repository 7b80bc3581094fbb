//! Just enough of the ONNX file format (protobuf) to find initializers whose data lives in another file
//! (ONNX "external data"). The worker hands ONNX Runtime the model's bytes and versions a model by their
//! SHA-256, so such a model cannot be served; ONNX Runtime's own error for it names neither the cause nor
//! the fix, and differs by operator.

/// ModelProto.graph; GraphProto.node / initializer; NodeProto.attribute; AttributeProto.t / tensors;
/// TensorProto.name / data_location (EXTERNAL is what ONNX Runtime goes by, not the presence of entries).
const MODEL_GRAPH: u64 = 7;
const GRAPH_NODE: u64 = 1;
const GRAPH_INITIALIZER: u64 = 5;
const NODE_ATTRIBUTE: u64 = 5;
const ATTRIBUTE_TENSOR: u64 = 5;
const ATTRIBUTE_TENSORS: u64 = 10;
const TENSOR_NAME: u64 = 8;
const TENSOR_DATA_LOCATION: u64 = 14;
const DATA_LOCATION_EXTERNAL: u64 = 1;

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Calls `f` with each top-level field of the message `b`; None if `b` is not a well-formed message.
fn fields<'a>(mut b: &'a [u8], mut f: impl FnMut(u64, Value<'a>)) -> Option<()> {
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut b)?),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                b = b.get(n..)?;
                Value::Fixed
            }
            2 => {
                let n = usize::try_from(varint(&mut b)?).ok()?;
                let (payload, rest) = (b.get(..n)?, b.get(n..)?);
                b = rest;
                Value::Bytes(payload)
            }
            _ => return None,
        };
        f(key >> 3, value);
    }
    Some(())
}

/// The name of the first tensor of the model `bytes` (an initializer, or a constant in a node's attribute)
/// whose data is external, if any. A file that is not a well-formed model yields None: ONNX Runtime
/// reports that better.
pub fn external_tensor(bytes: &[u8]) -> Option<String> {
    let mut graph = None;
    fields(bytes, |n, v| {
        if let (MODEL_GRAPH, Value::Bytes(g)) = (n, v) {
            graph = Some(g);
        }
    })?;
    let mut tensors = Vec::new();
    fields(graph?, |n, v| match (n, v) {
        (GRAPH_INITIALIZER, Value::Bytes(t)) => tensors.push(t),
        (GRAPH_NODE, Value::Bytes(node)) => {
            let _ = fields(node, |n, v| {
                if let (NODE_ATTRIBUTE, Value::Bytes(attribute)) = (n, v) {
                    let _ = fields(attribute, |n, v| {
                        if let (ATTRIBUTE_TENSOR | ATTRIBUTE_TENSORS, Value::Bytes(t)) = (n, v) {
                            tensors.push(t);
                        }
                    });
                }
            });
        }
        _ => {}
    })?;
    tensors.into_iter().find_map(|tensor| {
        let (mut name, mut external) = (String::new(), false);
        fields(tensor, |n, v| match (n, v) {
            (TENSOR_NAME, Value::Bytes(s)) => name = String::from_utf8_lossy(s).into_owned(),
            (TENSOR_DATA_LOCATION, Value::Varint(DATA_LOCATION_EXTERNAL)) => external = true,
            _ => {}
        })?;
        external.then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![u8::try_from(n << 3 | 2).unwrap(), u8::try_from(payload.len()).unwrap()];
        v.extend_from_slice(payload);
        v
    }

    fn model(tensors: &[Vec<u8>]) -> Vec<u8> {
        let graph: Vec<u8> = tensors.iter().flat_map(|t| field(GRAPH_INITIALIZER, t)).collect();
        // ir_version = 8 (a varint) first, as exporters write it.
        let mut m = vec![0x08, 8];
        m.extend(field(MODEL_GRAPH, &graph));
        m
    }

    #[test]
    fn finds_initializers_located_externally() {
        let inline = [field(TENSOR_NAME, b"w").as_slice(), &[0x08, 1]].concat();
        assert_eq!(external_tensor(&model(std::slice::from_ref(&inline))), None);
        let located = [field(TENSOR_NAME, b"conv.weight").as_slice(), &[u8::try_from(TENSOR_DATA_LOCATION << 3).unwrap(), 1]].concat();
        assert_eq!(external_tensor(&model(&[inline.clone(), located])).as_deref(), Some("conv.weight"));
        // data_location DEFAULT (0) is inline, whatever else the tensor carries (field 13, external_data).
        let default =
            [field(TENSOR_NAME, b"fc.bias"), field(13, &field(1, b"location")), vec![u8::try_from(TENSOR_DATA_LOCATION << 3).unwrap(), 0]]
                .concat();
        assert_eq!(external_tensor(&model(&[inline, default])), None);
    }

    #[test]
    fn finds_external_constants_in_node_attributes() {
        let tensor = [field(TENSOR_NAME, b"crop_start"), vec![u8::try_from(TENSOR_DATA_LOCATION << 3).unwrap(), 1]].concat();
        let attribute = field(ATTRIBUTE_TENSOR, &tensor);
        let node = field(NODE_ATTRIBUTE, &attribute);
        let graph = field(GRAPH_NODE, &node);
        let m = [vec![0x08, 8], field(MODEL_GRAPH, &graph)].concat();
        assert_eq!(external_tensor(&m).as_deref(), Some("crop_start"));
        // A subgraph attribute (GRAPHS, field 11) is not read as a tensor: its value_info (field 13) is no
        // external-data marker.
        let subgraph = field(13, b"x");
        let attribute = field(11, &subgraph);
        let node = field(NODE_ATTRIBUTE, &attribute);
        let m = [vec![0x08, 8], field(MODEL_GRAPH, &field(GRAPH_NODE, &node))].concat();
        assert_eq!(external_tensor(&m), None);
    }

    #[test]
    fn garbage_is_left_to_onnx_runtime() {
        assert_eq!(external_tensor(b"\x08\x07this is not a protobuf model at all"), None);
        assert_eq!(external_tensor(&[0x3a, 0x7f, 0x01]), None);
        assert_eq!(external_tensor(&[]), None);
    }

    #[test]
    fn the_demo_model_has_its_weights_inside() {
        let demo = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/endoreg-demo-multilabel.onnx")).unwrap();
        assert_eq!(external_tensor(&demo), None);
    }
}
