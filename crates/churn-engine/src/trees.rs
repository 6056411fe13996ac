//! Tree ensembles read from the graph (`ai.onnx.ml` `TreeEnsembleClassifier`,
//! `TreeEnsembleRegressor` and the opset-5 `TreeEnsemble`), in a form an explainer can walk: the same splits, float32
//! thresholds, missing-value routing and leaf weights ONNX Runtime evaluates.

use std::collections::HashMap;

use crate::onnx_proto::{GraphProto, NodeProto, TensorProto};

/// How a split compares a value with its threshold; true takes the `true` child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitRule {
    LessOrEqual,
    Less,
    GreaterOrEqual,
    Greater,
    Equal,
    NotEqual,
}

/// One node of a tree: a split, or a leaf carrying the margin it adds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TreeNode {
    Split {
        /// Column of the dense input.
        column: usize,
        rule: SplitRule,
        threshold: f64,
        /// Where a missing (NaN) value goes when the model tracks missing values.
        missing_goes_true: bool,
        when_true: usize,
        when_false: usize,
    },
    Leaf {
        value: f64,
    },
}

/// One tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub nodes: Vec<TreeNode>,
}

/// A sum of trees plus a base value: the model's margin (log-odds) of the positive class
/// before its logistic transform.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeEnsemble {
    pub trees: Vec<Tree>,
    pub base_value: f64,
    /// Width of the dense input the trees read.
    pub columns: usize,
}

impl SplitRule {
    /// Whether `value` takes the `true` child, as ONNX Runtime decides it.
    pub fn goes_true(self, value: f64, threshold: f64, missing_goes_true: bool) -> bool {
        if value.is_nan() && missing_goes_true {
            return true;
        }
        match self {
            SplitRule::LessOrEqual => value <= threshold,
            SplitRule::Less => value < threshold,
            SplitRule::GreaterOrEqual => value >= threshold,
            SplitRule::Greater => value > threshold,
            SplitRule::Equal => value == threshold,
            SplitRule::NotEqual => value != threshold,
        }
    }
}

impl Tree {
    /// The leaf `row` reaches.
    pub fn leaf_value(&self, row: &[f64]) -> f64 {
        let mut index = 0;
        loop {
            match self.nodes[index] {
                TreeNode::Leaf { value } => return value,
                TreeNode::Split {
                    column,
                    rule,
                    threshold,
                    missing_goes_true,
                    when_true,
                    when_false,
                } => {
                    index = if rule.goes_true(row[column], threshold, missing_goes_true) {
                        when_true
                    } else {
                        when_false
                    };
                }
            }
        }
    }
}

impl TreeEnsemble {
    /// The margin of one dense row.
    pub fn margin(&self, row: &[f64]) -> f64 {
        self.base_value + self.trees.iter().map(|t| t.leaf_value(row)).sum::<f64>()
    }

    /// How many splits test each column.
    pub fn split_counts(&self) -> Vec<u64> {
        let mut counts = vec![0; self.columns];
        for node in self.trees.iter().flat_map(|t| &t.nodes) {
            if let TreeNode::Split { column, .. } = node {
                counts[*column] += 1;
            }
        }
        counts
    }
}

/// The ensemble whose logistic output is the model's probability, when the graph is one
/// tree node over its dense input `input_name` with a logistic post-transform, or none
/// and a `Sigmoid` on its output. The caller still checks it against ONNX Runtime's
/// answers before trusting it.
pub(crate) fn logistic_ensemble(
    graph: &GraphProto,
    input_name: &str,
    columns: usize,
) -> Result<TreeEnsemble, String> {
    let mut tree_nodes = graph.node.iter().filter(|n| {
        matches!(
            n.op_type.as_str(),
            "TreeEnsembleClassifier" | "TreeEnsembleRegressor" | "TreeEnsemble"
        )
    });
    let (Some(node), None) = (tree_nodes.next(), tree_nodes.next()) else {
        return Err("the graph is not a single tree ensemble".to_owned());
    };
    if node.input.first().map(String::as_str) != Some(input_name) {
        return Err("the tree ensemble does not read the dense input directly".to_owned());
    }
    let sigmoid_follows = graph
        .node
        .iter()
        .any(|n| n.op_type == "Sigmoid" && n.input.iter().any(|i| node.output.contains(i)));
    let post_transform = match node.attribute("post_transform") {
        None => "NONE".to_owned(),
        // TreeEnsemble (opset 5) numbers the transforms; 2 is LOGISTIC.
        Some(a) if node.op_type == "TreeEnsemble" => {
            if a.i == 2 { "LOGISTIC" } else { "NONE" }.to_owned()
        }
        Some(a) => String::from_utf8_lossy(&a.s).into_owned(),
    };
    let logistic = post_transform == "LOGISTIC" || (post_transform == "NONE" && sigmoid_follows);
    if !logistic {
        return Err(format!(
            "the tree ensemble's output ({post_transform} post-transform) is not a logistic margin: its log-odds are not a sum over trees"
        ));
    }
    if node.op_type == "TreeEnsemble" {
        return read_opset5_trees(node, columns);
    }
    let prefix = if node.op_type == "TreeEnsembleClassifier" {
        "class"
    } else {
        "target"
    };
    let targets = ints(node, &format!("{prefix}_ids"))?;
    if targets.iter().any(|&t| t != targets[0]) {
        return Err("the tree ensemble has more than one margin (multi-class)".to_owned());
    }
    read_trees(node, prefix, columns)
}

/// `TreeEnsemble` (ai.onnx.ml opset 5): splits and leaves in separate arrays, trees by
/// their root split, children flagged as leaf or split.
fn read_opset5_trees(node: &NodeProto, columns: usize) -> Result<TreeEnsemble, String> {
    if node
        .attribute("aggregate_function")
        .is_some_and(|a| a.i != 1)
    {
        return Err("the tree ensemble does not sum its trees".to_owned());
    }
    if node.attribute("n_targets").is_some_and(|a| a.i != 1) {
        return Err("the tree ensemble has more than one target".to_owned());
    }
    let roots = ints(node, "tree_roots")?;
    let splits = Opset5Splits {
        features: ints(node, "nodes_featureids")?,
        thresholds: tensor(node, "nodes_splits", TensorProto::reals)?,
        modes: tensor(node, "nodes_modes", TensorProto::integers)?,
        true_ids: ints(node, "nodes_truenodeids")?,
        true_leaves: ints(node, "nodes_trueleafs")?,
        false_ids: ints(node, "nodes_falsenodeids")?,
        false_leaves: ints(node, "nodes_falseleafs")?,
        missing_true: node
            .attribute("nodes_missing_value_tracks_true")
            .map_or_else(Vec::new, |a| a.ints.clone()),
        leaf_weights: tensor(node, "leaf_weights", TensorProto::reals)?,
        columns,
    };
    let count = splits.features.len();
    for (name, len) in [
        ("nodes_splits", splits.thresholds.len()),
        ("nodes_modes", splits.modes.len()),
        ("nodes_truenodeids", splits.true_ids.len()),
        ("nodes_trueleafs", splits.true_leaves.len()),
        ("nodes_falsenodeids", splits.false_ids.len()),
        ("nodes_falseleafs", splits.false_leaves.len()),
    ] {
        if len != count {
            return Err(format!(
                "{name} has {len} entries, nodes_featureids {count}"
            ));
        }
    }
    if ints(node, "leaf_targetids")?.iter().any(|&t| t != 0) {
        return Err("the tree ensemble has more than one target".to_owned());
    }
    let trees = roots
        .iter()
        .map(|&root| {
            let mut tree = Tree { nodes: Vec::new() };
            let mut visited = vec![false; count];
            splits.add(&mut tree, false, root, &mut visited)?;
            Ok(tree)
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(TreeEnsemble {
        trees,
        base_value: 0.0,
        columns,
    })
}

struct Opset5Splits {
    features: Vec<i64>,
    thresholds: Vec<f64>,
    modes: Vec<i64>,
    true_ids: Vec<i64>,
    true_leaves: Vec<i64>,
    false_ids: Vec<i64>,
    false_leaves: Vec<i64>,
    missing_true: Vec<i64>,
    leaf_weights: Vec<f64>,
    columns: usize,
}

impl Opset5Splits {
    /// Appends the subtree at `id` (a leaf or a split) to `tree`; returns its index. Each
    /// reference to a leaf gets its own node; a split reached twice is refused.
    fn add(
        &self,
        tree: &mut Tree,
        leaf: bool,
        id: i64,
        visited: &mut [bool],
    ) -> Result<usize, String> {
        let index = usize::try_from(id).map_err(|_| format!("negative node id {id}"))?;
        if leaf {
            let value = *self
                .leaf_weights
                .get(index)
                .ok_or_else(|| format!("leaf {id} does not exist"))?;
            tree.nodes.push(TreeNode::Leaf { value });
            return Ok(tree.nodes.len() - 1);
        }
        if index >= visited.len() || std::mem::replace(&mut visited[index], true) {
            return Err(format!("split {id} does not exist or is reachable twice"));
        }
        let rule = match self.modes[index] {
            0 => SplitRule::LessOrEqual,
            1 => SplitRule::Less,
            2 => SplitRule::GreaterOrEqual,
            3 => SplitRule::Greater,
            4 => SplitRule::Equal,
            5 => SplitRule::NotEqual,
            other => return Err(format!("split mode {other} (set membership) is not read")),
        };
        let column = usize::try_from(self.features[index])
            .ok()
            .filter(|&c| c < self.columns)
            .ok_or_else(|| {
                format!(
                    "a split reads column {}, beyond the input",
                    self.features[index]
                )
            })?;
        tree.nodes.push(TreeNode::Leaf { value: 0.0 });
        let slot = tree.nodes.len() - 1;
        let when_true = self.add(
            tree,
            self.true_leaves[index] != 0,
            self.true_ids[index],
            visited,
        )?;
        let when_false = self.add(
            tree,
            self.false_leaves[index] != 0,
            self.false_ids[index],
            visited,
        )?;
        tree.nodes[slot] = TreeNode::Split {
            column,
            rule,
            threshold: self.thresholds[index],
            missing_goes_true: self.missing_true.get(index).is_some_and(|&m| m != 0),
            when_true,
            when_false,
        };
        Ok(slot)
    }
}

fn read_trees(node: &NodeProto, prefix: &str, columns: usize) -> Result<TreeEnsemble, String> {
    let tree_ids = ints(node, "nodes_treeids")?;
    let node_ids = ints(node, "nodes_nodeids")?;
    let features = ints(node, "nodes_featureids")?;
    let modes = node
        .attribute("nodes_modes")
        .ok_or("nodes_modes is missing")?
        .strings_utf8();
    let thresholds = reals(node, "nodes_values")?;
    let true_ids = ints(node, "nodes_truenodeids")?;
    let false_ids = ints(node, "nodes_falsenodeids")?;
    let missing_true = node
        .attribute("nodes_missing_value_tracks_true")
        .map_or_else(Vec::new, |a| a.ints.clone());
    let count = tree_ids.len();
    for (name, len) in [
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", features.len()),
        ("nodes_modes", modes.len()),
        ("nodes_values", thresholds.len()),
        ("nodes_truenodeids", true_ids.len()),
        ("nodes_falsenodeids", false_ids.len()),
    ] {
        if len != count {
            return Err(format!("{name} has {len} entries, nodes_treeids {count}"));
        }
    }

    let mut order: Vec<i64> = Vec::new();
    let mut local: HashMap<(i64, i64), usize> = HashMap::with_capacity(count);
    let mut sizes: HashMap<i64, usize> = HashMap::new();
    for (&tree, &id) in tree_ids.iter().zip(&node_ids) {
        let size = sizes.entry(tree).or_insert_with(|| {
            order.push(tree);
            0
        });
        if local.insert((tree, id), *size).is_some() {
            return Err(format!("tree {tree} has node {id} twice"));
        }
        *size += 1;
    }
    let mut trees: HashMap<i64, Vec<Option<TreeNode>>> =
        sizes.iter().map(|(&t, &n)| (t, vec![None; n])).collect();
    let child = |tree: i64, id: i64| {
        local
            .get(&(tree, id))
            .copied()
            .ok_or_else(|| format!("tree {tree} points at node {id}, which it does not have"))
    };
    for i in 0..count {
        let (tree, id) = (tree_ids[i], node_ids[i]);
        let rule = match modes[i].as_str() {
            "LEAF" => None,
            "BRANCH_LEQ" => Some(SplitRule::LessOrEqual),
            "BRANCH_LT" => Some(SplitRule::Less),
            "BRANCH_GTE" => Some(SplitRule::GreaterOrEqual),
            "BRANCH_GT" => Some(SplitRule::Greater),
            "BRANCH_EQ" => Some(SplitRule::Equal),
            "BRANCH_NEQ" => Some(SplitRule::NotEqual),
            other => return Err(format!("node mode {other} is not known")),
        };
        let built = match rule {
            None => TreeNode::Leaf { value: 0.0 },
            Some(rule) => {
                let column = usize::try_from(features[i])
                    .ok()
                    .filter(|&c| c < columns)
                    .ok_or_else(|| {
                        format!("a split reads column {}, beyond the input", features[i])
                    })?;
                TreeNode::Split {
                    column,
                    rule,
                    threshold: thresholds[i],
                    missing_goes_true: missing_true.get(i).is_some_and(|&m| m != 0),
                    when_true: child(tree, true_ids[i])?,
                    when_false: child(tree, false_ids[i])?,
                }
            }
        };
        let slot = local[&(tree, id)];
        trees.get_mut(&tree).expect("sized above")[slot] = Some(built);
    }

    let weight_trees = ints(node, &format!("{prefix}_treeids"))?;
    let weight_nodes = ints(node, &format!("{prefix}_nodeids"))?;
    let weights = reals(node, &format!("{prefix}_weights"))?;
    if weight_trees.len() != weights.len() || weight_nodes.len() != weights.len() {
        return Err(format!("{prefix}_weights and its ids differ in length"));
    }
    for ((&tree, &id), &weight) in weight_trees.iter().zip(&weight_nodes).zip(&weights) {
        let slot = child(tree, id)?;
        match trees.get_mut(&tree).and_then(|t| t[slot].as_mut()) {
            Some(TreeNode::Leaf { value }) => *value += weight,
            _ => return Err(format!("tree {tree} has a weight on node {id}, not a leaf")),
        }
    }
    let base_value = node
        .attribute("base_values")
        .map_or(0.0, |a| a.floats.iter().map(|&v| f64::from(v)).sum());

    let trees = order
        .iter()
        .map(|tree| {
            let nodes = trees
                .remove(tree)
                .expect("every tree id was sized")
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("tree {tree} has a node without a definition"))?;
            let tree = Tree { nodes };
            check_acyclic(&tree).then_some(tree).ok_or_else(|| {
                "a tree's children do not form a tree (a node is reachable twice)".to_owned()
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TreeEnsemble {
        trees,
        base_value,
        columns,
    })
}

/// Every node is reached at most once from the root, so walks terminate.
fn check_acyclic(tree: &Tree) -> bool {
    let mut seen = vec![false; tree.nodes.len()];
    let mut pending = vec![0];
    while let Some(index) = pending.pop() {
        if std::mem::replace(&mut seen[index], true) {
            return false;
        }
        if let TreeNode::Split {
            when_true,
            when_false,
            ..
        } = tree.nodes[index]
        {
            pending.extend([when_true, when_false]);
        }
    }
    true
}

fn ints(node: &NodeProto, name: &str) -> Result<Vec<i64>, String> {
    node.attribute(name)
        .map(|a| a.ints.clone())
        .ok_or_else(|| format!("{} has no `{name}`", node.op_type))
}

/// Float attributes, or their `*_as_tensor` double form (opset 3).
fn reals(node: &NodeProto, name: &str) -> Result<Vec<f64>, String> {
    if let Some(attribute) = node.attribute(name) {
        return Ok(attribute.floats.iter().map(|&v| f64::from(v)).collect());
    }
    tensor(node, &format!("{name}_as_tensor"), TensorProto::reals)
}

fn tensor<T>(
    node: &NodeProto,
    name: &str,
    read: impl Fn(&TensorProto) -> Option<Vec<T>>,
) -> Result<Vec<T>, String> {
    node.attribute(name)
        .and_then(|a| a.t.as_ref())
        .and_then(read)
        .ok_or_else(|| format!("{} has no readable `{name}`", node.op_type))
}
