import Torch

/// How a new parameter is filled before any checkpoint is loaded.
public enum Initializer: Sendable {
    case zeros
    case ones
    case constant(Double)
    case normal(mean: Double, std: Double)
    case uniform(low: Double, high: Double)
    /// PyTorch's default for `nn.Linear` / `nn.Conv2d` weights and biases
    /// (`kaiming_uniform_(a=√5)`, i.e. uniform on ±1/√fanIn).
    case kaimingUniform(fanIn: Int)
}

/// One named parameter: the tensor that modules compute with, and whether training updates it.
public final class Parameter: @unchecked Sendable {
    /// The checkpoint key (`down_blocks.0.resnets.1.conv1.weight`).
    public let name: String
    public let tensor: Tensor
    /// True for adapter weights (LoRA), which load and save apart from the base model.
    public let isAdapter: Bool
    public private(set) var trainable: Bool

    init(name: String, tensor: Tensor, trainable: Bool, isAdapter: Bool) {
        self.name = name
        self.tensor = tensor
        self.isAdapter = isAdapter
        self.trainable = trainable
        tensor.requiresGrad = trainable
    }

    func setTrainable(_ flag: Bool) {
        trainable = flag
        tensor.requiresGrad = flag
        if !flag { tensor.zeroGrad() }
    }
}

/// Every parameter of a model by its checkpoint key, as tch's `VarStore`.
///
/// Modules register their tensors through a ``ParameterPath`` whose components are exactly the
/// diffusers / transformers module names, so the keys equal the checkpoint's and loading needs no
/// rename table. Loading copies values into the registered tensors in place, so the modules that
/// hold them see the new values.
///
/// ```swift
/// let store = try ParameterStore(seed: 0)
/// let proj = Linear(store.root / "to_q", 8, 8)          // registers `to_q.weight`, `to_q.bias`
/// try store.load(from: SafeTensorsFile(path: "attn.safetensors"))
/// ```
public final class ParameterStore: @unchecked Sendable {
    public let device: Device
    public let dtype: DType
    /// Draws initial values; seeded so that the same seed builds the same model.
    public let generator: Generator
    private var order: [String] = []
    private var table: [String: Parameter] = [:]
    private var registeredScalars = 0
    /// When set, the parameters may hold at most this many scalars in all: loaders set it to what
    /// the weight file holds, so that a config describing a larger model than its weights
    /// allocates nothing. Parameters past it are zero-stride placeholders, the first of them is
    /// named in ``budgetExceeded``, and ``load(from:selection:keyPrefix:strict:)`` refuses to run.
    public var scalarBudget: Int? = nil
    /// The first parameter registered past ``scalarBudget`` (or with an overflowing shape).
    public private(set) var budgetExceeded: String? = nil
    /// LoRA adapters to add to the `Linear` layers it targets as a model is built (set before building).
    public var loraInjection: LoRAInjection? = nil
    /// When false, injected adapters are skipped (the base model: a reference for KL terms).
    public var adaptersEnabled = true

    public init(device: Device = .cpu, dtype: DType = .float32, seed: UInt64 = 0) throws {
        try device.validate()
        self.device = device
        self.dtype = dtype
        self.generator = try Generator(seed: seed)
    }

    /// The empty path; build keys with `/`.
    public var root: ParameterPath { ParameterPath(store: self, components: []) }

    /// All parameters in registration order.
    public var parameters: [Parameter] { order.map { table[$0]! } }

    public subscript(name: String) -> Parameter? { table[name] }

    public var count: Int { order.count }

    /// Total number of scalar weights.
    public var scalarCount: Int { parameters.reduce(0) { $0 + $1.tensor.count } }

    /// Tensors that training updates.
    public var trainableTensors: [Tensor] { parameters.filter(\.trainable).map(\.tensor) }

    /// Registers a parameter under `name`; a duplicate name is a programming error.
    public func register(_ name: String, shape: [Int], initializer: Initializer, trainable: Bool = true,
                         isAdapter: Bool = false, dtype: DType? = nil) -> Tensor {
        precondition(table[name] == nil, "parameter `\(name)` registered twice")
        var scalars = 1
        var fits = shape.allSatisfy { $0 >= 0 }
        for d in shape where fits {
            let (p, overflow) = scalars.multipliedReportingOverflow(by: d)
            fits = !overflow
            scalars = p
        }
        if fits {
            let (total, overflow) = registeredScalars.addingReportingOverflow(scalars)
            fits = !overflow && total <= (scalarBudget ?? Int.max)
            registeredScalars = total
        }
        if !fits {
            // Past the budget: a zero-stride view of one scalar stands in, so building goes on
            // without allocating and the loader reports the first parameter that did not fit.
            if budgetExceeded == nil { budgetExceeded = "`\(name)` \(shape)" }
            let placeholder = Tensor.zeros([1], dtype: dtype ?? self.dtype).expand(shape.map { Swift.max($0, 0) })
                .detached()
            let p = Parameter(name: name, tensor: placeholder, trainable: false, isAdapter: isAdapter)
            table[name] = p
            order.append(name)
            return placeholder
        }
        let t = Tensor.zeros(shape, dtype: .float32)
        switch initializer {
        case .zeros: break
        case .ones: t.fill_(1)
        case .constant(let v): t.fill_(v)
        case .normal(let mean, let std): t.normal_(mean: mean, std: std, generator: generator)
        case .uniform(let low, let high): t.uniform_(low, high, generator: generator)
        case .kaimingUniform(let fanIn):
            let bound = fanIn > 0 ? 1 / Double(fanIn).squareRoot() : 0
            t.uniform_(-bound, bound, generator: generator)
        }
        let target = dtype ?? self.dtype
        let tensor = (device == .cpu && target == .float32) ? t : t.to(device, target)
        let p = Parameter(name: name, tensor: tensor, trainable: trainable, isAdapter: isAdapter)
        table[name] = p
        order.append(name)
        return tensor
    }

    /// Stops training every parameter whose key starts with `prefix` (all when empty).
    public func freeze(prefix: String = "", adapters: Bool? = nil) {
        for p in parameters where p.name.hasPrefix(prefix) && (adapters == nil || p.isAdapter == adapters) {
            p.setTrainable(false)
        }
    }

    /// Trains every parameter whose key starts with `prefix` (all when empty).
    public func unfreeze(prefix: String = "", adapters: Bool? = nil) {
        for p in parameters where p.name.hasPrefix(prefix) && (adapters == nil || p.isAdapter == adapters) {
            p.setTrainable(true)
        }
    }

    /// Clears every gradient.
    public func zeroGrad() { for p in parameters { p.tensor.zeroGrad() } }

    /// Which parameters a load or save covers.
    public enum Selection: Sendable {
        case all, base, adapters

        func includes(_ p: Parameter) -> Bool {
            switch self {
            case .all: return true
            case .base: return !p.isAdapter
            case .adapters: return p.isAdapter
            }
        }
    }

    /// Copies weights from `source` into the selected parameters.
    ///
    /// Keys in the source are `keyPrefix + name`. With `strict` (the default) any missing, unused or
    /// mis-shaped key throws ``NNError/loadFailed(_:)`` naming the key and file, and nothing is
    /// changed; otherwise matching weights load and the report lists the rest. Values are
    /// converted to each parameter's dtype and device.
    @discardableResult
    public func load(from source: TensorSource, selection: Selection = .base, keyPrefix: String = "",
                     strict: Bool = true) throws -> LoadReport {
        if let first = budgetExceeded {
            throw NNError.invalidConfig("the configuration describes more weights than the "
                + "\(scalarBudget.map(String.init) ?? "addressable") scalars the weight file holds "
                + "(the first past it: \(first))")
        }
        var report = LoadReport()
        var wanted = Set<String>()
        var plan: [(Parameter, String)] = []
        for p in parameters where selection.includes(p) {
            let key = keyPrefix + p.name
            wanted.insert(key)
            guard let info = source.info(key) else {
                report.missing.append((key, source.location(of: key)))
                continue
            }
            if info.shape != p.tensor.shape {
                report.mismatched.append(.init(key: key, expected: p.tensor.shape, found: info.shape,
                                               file: source.location(of: key)))
                continue
            }
            plan.append((p, key))
        }
        for name in source.names where name.hasPrefix(keyPrefix) && !wanted.contains(name) {
            report.unused.append((name, source.location(of: name)))
        }
        if strict && !report.isClean { throw NNError.loadFailed(report) }
        try withNoGrad {
            for (p, key) in plan { p.tensor.copy_(try source.tensor(key)) }
        }
        report.loaded = plan.count
        return report
    }

    /// The selected parameters by key (the tensors themselves, detached).
    public func state(_ selection: Selection = .base, keyPrefix: String = "") -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for p in parameters where selection.includes(p) { out[keyPrefix + p.name] = p.tensor.detached() }
        return out
    }

    /// Writes the selected parameters to a safetensors file, atomically.
    public func save(to path: String, selection: Selection = .base, keyPrefix: String = "",
                     metadata: [String: String] = ["format": "pt"]) throws {
        try SafeTensors.write(state(selection, keyPrefix: keyPrefix), metadata: metadata, to: path)
    }
}

extension ParameterStore {
    /// Sets ``scalarBudget`` to the scalars `source` holds plus `slack` (adapters and other
    /// parameters a file does not carry), before building a model that loads it.
    public func limitScalars(to source: TensorSource, slack: Int = 1 << 22) {
        var total = 0
        for name in source.names {
            guard let info = source.info(name) else { continue }
            var n = 1
            for d in info.shape {
                let (p, o) = n.multipliedReportingOverflow(by: Swift.max(d, 0))
                n = o ? Int.max : p
            }
            let (t, o) = total.addingReportingOverflow(n)
            total = o ? Int.max : t
        }
        scalarBudget = total > Int.max - slack ? Int.max : total + slack
    }

    /// Throws ``ModelError/badConfig(file:message:)`` naming `file` (the config) when the model
    /// built from it outgrew ``scalarBudget``.
    public func checkBudget(config file: String) throws {
        if let first = budgetExceeded {
            throw ModelError.badConfig(file: file, message: "describes a model with more weights than the "
                + "\(scalarBudget.map(String.init) ?? "addressable") scalars its weight file holds "
                + "(the first parameter past them: \(first))")
        }
    }
}

/// A dotted key under construction: `store.root / "down_blocks" / 0 / "resnets"`.
public struct ParameterPath: @unchecked Sendable {
    public let store: ParameterStore
    public let components: [String]

    public static func / (path: ParameterPath, name: String) -> ParameterPath {
        ParameterPath(store: path.store, components: path.components + [name])
    }

    public static func / (path: ParameterPath, index: Int) -> ParameterPath {
        path / String(index)
    }

    /// The dotted key of this path.
    public var key: String { components.joined(separator: ".") }

    /// The key of a parameter named `name` under this path.
    public func key(_ name: String) -> String { (self / name).key }

    /// Registers the parameter `name` under this path.
    public func parameter(_ name: String, _ shape: [Int], _ initializer: Initializer, trainable: Bool = true,
                          isAdapter: Bool = false) -> Tensor {
        store.register(key(name), shape: shape, initializer: initializer, trainable: trainable,
                       isAdapter: isAdapter)
    }
}
