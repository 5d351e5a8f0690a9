// E0216: pool padding 2 with a 3×3 kernel.
fpn::fpn! {
    name: PoolPad,
    inputs: { x: [3, 32, 32] },
    nodes: { pool: { max_pool: { kernel: 3, stride: 2, padding: 2 } } },
    outputs: [pool],
}

fn main() {}
