# Scores the Summaries of scripts/refine_bench.sh (run in its working directory).
import numpy as np, sys, glob
from astropy.table import Table
import csv
def nmad(x): x=x[np.isfinite(x)]; return 1.4826*np.median(np.abs(x-np.median(x))), np.median(x), len(x)
rows=[]
for s in ["7","8"]:
    t=Table.read(f"Summary/sim{s}_dre.fits")
    tr=list(csv.DictReader(open(f"Truth/sim{s}_truth.csv")))
    X=np.array([float(r["X"]) for r in tr]); Y=np.array([float(r["Y"]) for r in tr])
    for r in t:
        d=np.hypot(X-r["X_IMAGE"],Y-r["Y_IMAGE"]); j=np.argmin(d)
        if d[j]>3: continue
        g=tr[j]; rows.append((float(g["LOG_RE"]),float(g["Q"]),float(g["THETA"]),float(g["SNR"]),r["LOGR"],r["LOGR_PARAB"],r["LOGR_FIT"],r["LOGR_FIT_ERR"],r["AX_RATIO"],r["AX_RATIO_FIT"],r["AX_RATIO_FIT_ERR"],r["ANGLE"],r["ANGLE_FIT"],r["ANGLE_FIT_ERR"],r["DRE_FLAGS"]))
a=np.array(rows,dtype=float)
lr,q,th,snr=a[:,0],a[:,1],a[:,2],a[:,3]
def ad(x,y): return (x-y+90)%180-90
print("N",len(a))
edges=[0,50,100,200,1e9]
for lo,hi in zip(edges[:-1],edges[1:]):
    m=(snr>=lo)&(snr<hi); e=q<=0.8
    print(f"S/N {lo}-{hi} n={m.sum()}")
    print("  LOGR grid  nmad/med", nmad(a[m,4]-lr[m])[:2], "PARAB", nmad(a[m,5]-lr[m])[:2], "FIT", nmad(a[m,6]-lr[m])[:2], "pull", nmad((a[m,6]-lr[m])/a[m,7])[:2])
    print("  Q    grid", nmad(a[m,8]-q[m])[:2], "FIT", nmad(a[m,9]-q[m])[:2], "pull", nmad((a[m,9]-q[m])/a[m,10])[:2])
    mm=m&e
    print("  TH   grid", nmad(ad(a[mm,11],th[mm]))[:2], "FIT", nmad(ad(a[mm,12],th[mm]))[:2], "pull", nmad(ad(a[mm,12],th[mm])/a[mm,13])[:2])
# The README's table: NMAD / median by S/N bin, pulls as NMAD.
f=lambda x: "%.3f / %.3f" % nmad(x)[:2]
g=lambda x: "%.1f / %.1f" % nmad(x)[:2]
p=lambda x: "%.2f" % nmad(x)[0]
for lo,hi,lab in [(0,50,"< 50"),(50,100,"50-100"),(100,200,"100-200"),(200,1e9,"> 200")]:
    m=(snr>=lo)&(snr<hi); mm=m&(q<=0.8)
    print(f"| {lab} | {m.sum()} | {f(a[m,4]-lr[m])} | {f(a[m,5]-lr[m])} | {f(a[m,6]-lr[m])} | {p((a[m,6]-lr[m])/a[m,7])} | {f(a[m,8]-q[m])} | {f(a[m,9]-q[m])} | {p((a[m,9]-q[m])/a[m,10])} | {g(ad(a[mm,11],th[mm]))} | {g(ad(a[mm,12],th[mm]))} | {p(ad(a[mm,12],th[mm])/a[mm,13])} |")
e=q<=0.8
print(f"| all | {len(a)} | {f(a[:,4]-lr)} | {f(a[:,5]-lr)} | {f(a[:,6]-lr)} | | {f(a[:,8]-q)} | {f(a[:,9]-q)} | | {g(ad(a[e,11],th[e]))} | {g(ad(a[e,12],th[e]))} | |")
m=np.ones(len(a),bool)
print("ALL LOGR FIT", nmad(a[:,6]-lr), "Q FIT", nmad(a[:,9]-q), "TH FIT q<=.8", nmad(ad(a[q<=.8,12],th[q<=.8])))
f=a[:,14].astype(int)
for b in [1,2,4,8,16,32,64]: print("flag",b,(f&b>0).sum())
