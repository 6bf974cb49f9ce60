# bench/study.sh: accesses/s (all backends) against backends, pool and bufmgr
# data: pg n pool_per_s bufmgr_per_s   (datadir, outprefix given with -e)
set terminal pngcairo size 800,500 font ",10" noenhanced
set output outprefix.'-throughput.png'
set title 'Block hits: accesses per second of all backends'
set xlabel 'backends'
set ylabel 'million accesses per second'
set key top left
set grid
set xtics 1
f = datadir.'/study-throughput.dat'
plot f using (strcol(1) eq '4k' ? $2 : 1/0):($3/1e6) with linespoints lw 2 title 'pool, 4 kB', \
     f using (strcol(1) eq '4k' ? $2 : 1/0):($4/1e6) with linespoints lw 2 title 'bufmgr, 4 kB', \
     f using (strcol(1) eq 'hugetlb' ? $2 : 1/0):($3/1e6) with linespoints lw 2 dt 2 title 'pool, hugetlb', \
     f using (strcol(1) eq 'hugetlb' ? $2 : 1/0):($4/1e6) with linespoints lw 2 dt 2 title 'bufmgr, huge_pages = on'
