// A small CRI client (runtime.v1.RuntimeService over gRPC on a unix socket), as the kubelet
// talks to containerd. Test-only: @grpc/grpc-js and @grpc/proto-loader are devDependencies and
// must never be imported from plugins/, ipam/ or lib/.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE';

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  logDirectory?: string;
  dnsConfig?: { servers?: string[]; searches?: string[]; options?: string[] };
  portMappings?: { protocol?: Protocol; containerPort: number; hostPort?: number; hostIp?: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: { cgroupParent?: string; securityContext?: { namespaceOptions?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode } } };
}

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface PodSandboxStatus {
  id: string;
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  network: { ip: string; additionalIps: { ip: string }[] } | null;
}

/** The parts of containerd's verbose sandbox info (`info["info"]`, JSON) the suite reads. */
export interface SandboxInfo {
  pid: number;
  /** True once the pod's netns mount is gone. */
  netNamespaceClosed?: boolean;
  [k: string]: unknown;
}

type Unary = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void;

const PROTO = join(__dirname, 'runtime.proto');

export class CriClient {
  private readonly stub: grpc.Client & Record<string, Unary>;

  /** socket: the CRI endpoint's unix socket path. */
  constructor(socket: string) {
    const def = protoLoader.loadSync(PROTO, { keepCase: false, longs: Number, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
    this.stub = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Unary>;
  }

  private call<T>(method: string, req: object, timeoutMs = 60_000): Promise<T> {
    return new Promise((resolve, reject) => {
      this.stub[method]!.call(this.stub, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (e, r) => {
        if (e) reject(new Error(`CRI ${method}: ${e.details || e.message} (grpc code ${e.code})`));
        else resolve(r as T);
      });
    });
  }

  version(): Promise<{ version: string; runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }> {
    return this.call('Version', { version: 'v1' }, 5_000);
  }

  async status(): Promise<RuntimeCondition[]> {
    const r = await this.call<{ status: { conditions: RuntimeCondition[] } | null }>('Status', {});
    return r.status?.conditions ?? [];
  }

  /** The pod sandbox ID (64 hex), once the sandbox is READY (containerd has done CNI ADD). */
  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    return (await this.call<{ podSandboxId: string }>('RunPodSandbox', { config }, 120_000)).podSandboxId;
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call('StopPodSandbox', { podSandboxId: id }, 120_000);
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call('RemovePodSandbox', { podSandboxId: id }, 120_000);
  }

  async podSandboxStatus(id: string): Promise<{ status: PodSandboxStatus; info: SandboxInfo }> {
    const r = await this.call<{ status: PodSandboxStatus; info: Record<string, string> }>('PodSandboxStatus', { podSandboxId: id, verbose: true });
    return { status: r.status, info: JSON.parse(r.info.info ?? '{}') as SandboxInfo };
  }

  async listPodSandbox(): Promise<{ id: string; state: string }[]> {
    return (await this.call<{ items: { id: string; state: string }[] }>('ListPodSandbox', {})).items;
  }

  close(): void {
    this.stub.close();
  }
}
